"""Which service and workload an alert is about, from its labels alone (pure functions)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

# Labels that name the application, best first. `service` and `job` come late and are
# checked against exporter names: kube-state-metrics and kubelet series carry the
# exporter's own service and job, not the workload's.
_SERVICE_LABELS = (
    "exported_service",
    "service",
    "app_kubernetes_io_name",
    "app",
    "k8s_app",
    "deployment",
    "statefulset",
    "daemonset",
)
_EXPORTER_HINTS = (
    "kube-state-metrics",
    "kubelet",
    "node-exporter",
    "cadvisor",
    "apiserver",
    "prometheus-operator",
    "blackbox-exporter",
    "pushgateway",
)
# Kubernetes generates ReplicaSet hashes and pod suffixes from this alphabet (no vowels, so
# a word in a workload name is never mistaken for one).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
# These run on pod labels from alerts: `.+` gives back one '-' at a time and what follows
# is bounded or one class run, so the work stays linear in the name's length.
_DEPLOYMENT_POD = re.compile(rf"^(?P<workload>.+)-[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}$")
_SHORT_SUFFIX_POD = re.compile(rf"^(?P<workload>.+)-(?:[0-9]+|[{_SAFE}]{{5}})$")

# For PromQL label_replace: the same rules as `workload_of_pod`, in RE2 syntax.
DEPLOYMENT_POD_RE2 = rf"(.+)-[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}"
SHORT_SUFFIX_POD_RE2 = rf"(.+)-([0-9]+|[{_SAFE}]{{5}})"


@functools.lru_cache(maxsize=4096)  # asked for every alert's service labels; names repeat
def is_exporter_name(value: str) -> bool:
    return any(hint in value for hint in _EXPORTER_HINTS)


def workload_of_pod(pod: str) -> str:
    """`checkout-6d9f7c8b4d-x2x7k` -> `checkout`, `redis-0` -> `redis`; else the pod name."""
    for pattern in (_DEPLOYMENT_POD, _SHORT_SUFFIX_POD):
        match = pattern.match(pod)
        if match:
            return match.group("workload")
    return pod


def alert_service(labels: Mapping[str, str]) -> str | None:
    """The service an alert is about, or None when its labels do not say."""
    for label in _SERVICE_LABELS:
        value = labels.get(label, "")
        if value and not is_exporter_name(value):
            return value
    pod = labels.get("pod", "")
    if pod:
        return workload_of_pod(pod)
    for label in ("container", "job"):
        value = labels.get(label, "")
        if value and not is_exporter_name(value):
            return value
    return None


def column_service(name: str) -> str:
    """A service name usable as the `<service>_` prefix of a case-table column.

    The case format splits the column at the first underscore, so an underscore inside a
    service name (possible outside Kubernetes) becomes a hyphen, here and in graph edges.
    """
    return name.replace("_", "-")


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def promql_regex_literal(value: str) -> str:
    """Escape regex metacharacters so `value` matches itself inside an RE2 matcher."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", value)
