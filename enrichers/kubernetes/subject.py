"""Which Kubernetes object an alert is about, read from its labels.

kube-prometheus-stack alerts carry the object in the labels of the series they were
computed from (kube-state-metrics, cAdvisor, kubelet). When Prometheus scrapes a target
without honor_labels, a series' own `namespace`/`pod`/... collide with the target labels
and are renamed `exported_*`; the exported value then names the real object and the plain
one names the exporter's pod, so the exported value wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

SubjectKind = Literal["pod", "deployment", "statefulset", "daemonset", "replicaset", "job", "service", "node"]

# Most specific first: a pod alert also carries the workload or the exporter's service.
# `job` is deliberately absent: on every series it is the Prometheus scrape job
# (e.g. "kube-state-metrics"); kube-state-metrics names a Kubernetes Job in `job_name`.
_LABELS_BY_KIND: tuple[tuple[SubjectKind, tuple[str, ...]], ...] = (
    ("pod", ("pod",)),
    ("deployment", ("deployment",)),
    ("statefulset", ("statefulset",)),
    ("daemonset", ("daemonset",)),
    ("job", ("job_name",)),
    ("replicaset", ("replicaset",)),
    ("service", ("service",)),
    ("node", ("node",)),
)
_CLUSTER_SCOPED: frozenset[SubjectKind] = frozenset({"node"})


@dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    name: str
    namespace: str | None  # None only for cluster-scoped kinds (node)
    container: str | None = None

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "container": self.container,
        }


def label_value(labels: Mapping[str, str], name: str) -> str | None:
    """`exported_<name>` if present and non-empty, else `<name>`, else None."""
    for key in (f"exported_{name}", name):
        value = labels.get(key, "").strip()
        if value:
            return value
    return None


def resolve_subject(labels: Mapping[str, str]) -> Subject | None:
    """The most specific object the labels name, or None when they name none."""
    namespace = label_value(labels, "namespace")
    for kind, names in _LABELS_BY_KIND:
        for label in names:
            name = label_value(labels, label)
            if name is None:
                continue
            if kind not in _CLUSTER_SCOPED and namespace is None:
                continue  # a namespaced name without its namespace cannot be looked up
            container = label_value(labels, "container") if kind == "pod" else None
            if container == "POD":  # cAdvisor's name for the pause container
                container = None
            return Subject(
                kind=kind,
                name=name,
                namespace=None if kind in _CLUSTER_SCOPED else namespace,
                container=container,
            )
    return None
