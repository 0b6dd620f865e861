"""Which Kubernetes object an alert is about, read from what its label names mean.

An alert's labels are the labels of the series its rule computed (kube-state-metrics,
kubelet/cAdvisor, node-exporter, the apiserver, Prometheus' `up`), plus the labels the
scrape added for the target (`instance`, `job`, `endpoint`, `service`, `metrics_path`, and
the exporter's own `namespace`/`pod`/`container`), plus Prometheus' external labels
(`prometheus`, `cluster`) and the rule's own (`severity`). Only the first kind names the
subject; the scrape target is the subject only when the alert is about the target itself
(`up`, TargetDown). Alert names are never consulted, so a user's own rules on the same
metrics resolve the same way.

When Prometheus scrapes without honor_labels, a series' own `namespace`/`pod`/... collide
with the target labels and are renamed `exported_*`; the exported value then names the
real object and the plain one the exporter, so the exported value wins.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

SubjectKind = Literal[
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "PodDisruptionBudget",
    "ResourceQuota",
    "Node",
    "Service",
    "Namespace",
    "Cluster",
]
CLUSTER_SCOPED: frozenset[SubjectKind] = frozenset({"Node", "PersistentVolume", "Namespace", "Cluster"})

# kube-state-metrics' label for each namespaced object it describes; a controller's
# ownerReference kind (owner_kind, created_by_kind, scaletargetref_kind) maps the same way.
_WORKLOAD_LABELS: tuple[tuple[SubjectKind, str], ...] = (
    ("Job", "job_name"),  # `job` is always the scrape job: kube-state-metrics says `job_name`
    ("CronJob", "cronjob"),
    ("StatefulSet", "statefulset"),
    ("DaemonSet", "daemonset"),
    ("Deployment", "deployment"),
    ("ReplicaSet", "replicaset"),
    ("PodDisruptionBudget", "poddisruptionbudget"),
)
_OWNER_KIND_NAMES: tuple[SubjectKind, ...] = (
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Node",
)
_OWNER_KINDS: Mapping[str, SubjectKind] = {kind: kind for kind in _OWNER_KIND_NAMES}
# Exporters whose pods put their own `pod`/`container` on every series they expose when
# the target labels leak in (honor_labels) even after `job` was aggregated away.
_EXPORTERS = ("kube-state-metrics", "node-exporter")
# Sidecars that serve an exporter's port (kube-prometheus fronts kube-state-metrics with
# kube-rbac-proxy): their container name is the target's, never a workload's.
_EXPORTER_CONTAINER_PREFIXES = ("kube-rbac-proxy",)
_NODE_EXPORTER_LABELS = ("mountpoint", "fstype")  # node-exporter's alone; cAdvisor has `device` too
_CADVISOR_PATH = "/metrics/cadvisor"
# The apiserver's aggregator names an APIService (`v1beta1.metrics.k8s.io`) in `name`; its
# series carry only the apiserver target's namespace, so the namespace names nothing.
_APISERVICE_NAME = re.compile(r"^v\d+(?:(?:alpha|beta)\d+)?\.[a-z0-9.-]+$")


@dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    name: str
    namespace: str | None  # None for cluster-scoped kinds
    container: str | None = None  # only for a Pod, when the alert names one container

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "container": self.container,
        }


@dataclass(frozen=True)
class Resolution:
    """The object an alert is about, and the objects the labels tie it to (where a volume
    is mounted, a pod's node and owner, an HPA's target); related objects are context for
    causes and symptoms, never the subject."""

    subject: Subject
    related: tuple[Subject, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject.to_json(), "related": [r.to_json() for r in self.related]}


def label_value(labels: Mapping[str, str], name: str) -> str | None:
    """`exported_<name>` if present and non-empty, else `<name>`, else None."""
    for key in (f"exported_{name}", name):
        value = labels.get(key, "").strip()
        if value:
            return value
    return None


def _label_values(labels: Mapping[str, str]) -> dict[str, str]:
    """`label_value` of every name the labels can answer, in one pass over them: a
    non-empty `exported_<name>` wins over `<name>`."""
    plain: dict[str, str] = {}
    exported: dict[str, str] = {}
    for key, raw in labels.items():
        value = raw.strip()
        if value:
            plain[key] = value
            if key.startswith("exported_"):
                exported[key.removeprefix("exported_")] = value
    return plain | exported if exported else plain


def resolve(labels: Mapping[str, str]) -> Resolution:
    """The object the labels are about; the Cluster when they name none."""
    # Every stage asks about each alert (enrich, rank, suppress, render, the outcome), and
    # the 97 rules are the costly part: a few recent answers are remembered (pure, frozen).
    return _remembered(frozenset(labels.items()))


@functools.lru_cache(maxsize=1024)
def _remembered(labels: frozenset[tuple[str, str]]) -> Resolution:
    return _resolve(dict(labels))


def _resolve(labels: Mapping[str, str]) -> Resolution:
    view = _Labels(labels)
    for rule in _RULES:
        found = rule(view)
        if found is not None:
            return found
    return Resolution(Subject("Cluster", label_value(labels, "cluster") or "cluster", None))


def resolve_subject(labels: Mapping[str, str]) -> Subject | None:
    """The object the labels name, or None when they name none (the cluster as a whole)."""
    subject = resolve(labels).subject
    return None if subject.kind == "Cluster" else subject


class _Labels:
    """The labels, read for meaning: which name an object, which the scrape target."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self.labels = labels
        self._values = _label_values(labels)
        self.namespace = self._values.get("namespace")
        self.scrape_job = labels.get("job", "").strip()  # the target's, never exported_job

    def value(self, name: str) -> str | None:
        """`label_value(labels, name)`, looked up: the rules ask a dozen names per alert."""
        return self._values.get(name)

    def namespaced(self, kind: SubjectKind, label: str) -> Subject | None:
        name = self.value(label)
        if name is None or self.namespace is None:
            return None  # a namespaced name without its namespace cannot be looked up
        return Subject(kind, name, self.namespace)

    def node(self) -> Subject | None:
        name = self.value("node")
        return Subject("Node", name, None) if name else None

    def is_exporter(self, name: str) -> bool:
        """A pod or container named after the scrape job or a known exporter is the
        target's own (e.g. job "node-exporter", pod "node-exporter-x7k2p")."""
        owners = (self.scrape_job, *_EXPORTERS) if self.scrape_job else _EXPORTERS
        return any(name == o or name.startswith(f"{o}-") or f"-{o}-" in name for o in owners)

    def pod_label(self) -> str | None:
        return self.value("pod")

    def workload_pod(self) -> Subject | None:
        """The pod the series describes, unless it is the exporter's own. A `uid` comes
        only from the series (kube-state-metrics' pod metrics), so it vouches for the pod."""
        pod = self.namespaced("Pod", "pod")
        if pod is None or (self.is_exporter(pod.name) and not self.value("uid")):
            return None
        return Subject("Pod", pod.name, pod.namespace, self.container(pod.name))

    def container(self, pod: str) -> str | None:
        """The named container, unless it is the exporter's leaking onto another pod."""
        name = self.value("container")
        if not name or name == "POD":  # cAdvisor's name for the pause container
            return None
        leaked = self.is_exporter(name) or name.startswith(_EXPORTER_CONTAINER_PREFIXES)
        return None if leaked and not self.is_exporter(pod) else name

    def owner(self, kind_label: str, name_label: str, namespace: str | None) -> Subject | None:
        kind = _OWNER_KINDS.get(self.value(kind_label) or "")
        name = self.value(name_label)
        if kind is None or not name or name == "<none>":
            return None
        return Subject(kind, name, None if kind in CLUSTER_SCOPED else namespace)

    def is_node_exporter_series(self) -> bool:
        if "node-exporter" in self.scrape_job:
            return True
        if any(self.value(label) for label in _NODE_EXPORTER_LABELS):
            return True
        # A block device without a workload pod: cAdvisor's `device` comes with one.
        cadvisor = self.labels.get("metrics_path") == _CADVISOR_PATH
        return bool(self.value("device")) and not cadvisor and self.workload_pod() is None


def _related(*objects: Subject | None) -> tuple[Subject, ...]:
    seen: list[Subject] = []
    for obj in objects:
        if obj is not None and obj not in seen:
            seen.append(obj)
    return tuple(seen)


def _strip_port(instance: str) -> str:
    if instance.startswith("["):  # [v6::addr]:port
        return instance[1 : instance.find("]")] if "]" in instance else instance
    host, sep, port = instance.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else instance


# ---- rules, most specific first --------------------------------------------------------


def _node_exporter(view: _Labels) -> Resolution | None:
    """node-exporter describes the machine: kube-prometheus relabels `instance` to the
    node's name; the series' namespace/pod/container are the exporter's own."""
    if not view.is_node_exporter_series():
        return None
    name = view.value("node") or _strip_port(view.value("instance") or "")
    return Resolution(Subject("Node", name, None)) if name else None


def _volume_claim(view: _Labels) -> Resolution | None:
    """kubelet volume stats carry the claim and the node that mounts it: the node is where
    the volume lives, not what is wrong."""
    claim = view.namespaced("PersistentVolumeClaim", "persistentvolumeclaim")
    if claim is None:
        return None
    volume = view.value("volumename")
    return Resolution(
        claim,
        _related(
            view.workload_pod(),
            view.node(),
            Subject("PersistentVolume", volume, None) if volume else None,
        ),
    )


def _autoscaler(view: _Labels) -> Resolution | None:
    hpa = view.namespaced("HorizontalPodAutoscaler", "horizontalpodautoscaler")
    if hpa is None:
        return None
    return Resolution(hpa, _related(view.owner("scaletargetref_kind", "scaletargetref_name", hpa.namespace)))


def _pod(view: _Labels) -> Resolution | None:
    pod = view.workload_pod()
    if pod is None:
        return None
    owners = (
        view.owner("owner_kind", "owner_name", pod.namespace),
        view.owner("created_by_kind", "created_by_name", pod.namespace),
    )
    return Resolution(pod, _related(*owners, view.node()))


def _workload(view: _Labels) -> Resolution | None:
    for kind, label in _WORKLOAD_LABELS:
        found = view.namespaced(kind, label)
        if found is not None:
            owner = view.owner("owner_kind", "owner_name", found.namespace)
            return Resolution(found, _related(owner))
    return None


def _volume(view: _Labels) -> Resolution | None:
    name = view.value("persistentvolume")
    if not name:
        return None
    # kube_persistentvolume_claim_ref names the bound claim in `name` + `claim_namespace`.
    claim_ns, claim = view.value("claim_namespace"), view.value("name")
    bound = Subject("PersistentVolumeClaim", claim, claim_ns) if claim and claim_ns else None
    return Resolution(Subject("PersistentVolume", name, None), _related(bound))


def _node(view: _Labels) -> Resolution | None:
    node = view.node()
    return Resolution(node) if node is not None else None


def _quota(view: _Labels) -> Resolution | None:
    quota = view.namespaced("ResourceQuota", "resourcequota")
    if quota is None or view.namespace is None:
        return None
    return Resolution(Subject("Namespace", view.namespace, None), (quota,))


def _aggregated_api(view: _Labels) -> Resolution | None:
    if not _APISERVICE_NAME.match(view.value("name") or ""):
        return None
    return Resolution(Subject("Cluster", view.value("cluster") or "cluster", None))


def _scrape_target(view: _Labels) -> Resolution | None:
    """An alert about the target itself (`up`, TargetDown): its Service, named by
    `service`, else by `job` (kube-prometheus names jobs after their Service)."""
    name = view.value("service") or view.scrape_job
    if not name or view.namespace is None:
        return None
    pod = view.pod_label()
    target_pod = Subject("Pod", pod, view.namespace) if pod else None
    return Resolution(Subject("Service", name, view.namespace), _related(target_pod, view.node()))


def _namespace(view: _Labels) -> Resolution | None:
    return Resolution(Subject("Namespace", view.namespace, None)) if view.namespace else None


def _exporter_pod(view: _Labels) -> Resolution | None:
    """Nothing else named: the pod the labels carry is the subject after all."""
    pod = view.namespaced("Pod", "pod")
    return Resolution(Subject("Pod", pod.name, pod.namespace, view.container(pod.name))) if pod is not None else None


_RULES: tuple[Callable[[_Labels], Resolution | None], ...] = (
    _node_exporter,
    _volume_claim,
    _autoscaler,
    _pod,
    _workload,
    _volume,
    _node,
    _quota,
    _aggregated_api,
    _scrape_target,
    _exporter_pod,
    _namespace,
)
