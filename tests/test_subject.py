"""Who an alert is about, for every alerting rule kube-prometheus installs.

Each row is the label set a rule's expression yields in a kube-prometheus-stack install:
the series labels of its metric as the exporter documents them, kept or dropped by the
expression's `by (...)`/`without (...)` and binary operators, the target labels the scrape
added (prometheus-operator ServiceMonitors; kube-state-metrics and the kubelet with
honor_labels), the rule's own labels and Prometheus' external labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from enrichers.kubernetes.subject import Resolution, Subject, _Labels, label_value, resolve, resolve_subject
from tests.conftest import FIXTURES

RULES_FILE = FIXTURES / "prometheus" / "kube-prometheus" / "rules.yaml"

EXTERNAL = {
    "prometheus": "monitoring/kube-prometheus-stack-prometheus",
    "prometheus_replica": "prometheus-kube-prometheus-stack-prometheus-0",
}

# ---- target labels, as the ServiceMonitors of kube-prometheus-stack add them -------------

KSM_POD = "kube-prometheus-stack-kube-state-metrics-6f8b9d7c4-x2xkq"
KSM = {
    "job": "kube-state-metrics",
    "instance": "10.244.1.12:8080",
    "endpoint": "http",
    "service": "kube-prometheus-stack-kube-state-metrics",
    "namespace": "monitoring",
    "pod": KSM_POD,
    "container": "kube-state-metrics",
}
# kube-prometheus (jsonnet) drops pod|service|endpoint|namespace and serves through a proxy.
KSM_JSONNET = {"job": "kube-state-metrics", "instance": "10.244.1.12:8443", "container": "kube-rbac-proxy-main"}
KUBELET = {
    "job": "kubelet",
    "instance": "172.18.0.4:10250",
    "endpoint": "https-metrics",
    "service": "kube-prometheus-stack-kubelet",
    "namespace": "kube-system",
    "node": "worker-2",
    "metrics_path": "/metrics",
}
CADVISOR = {**KUBELET, "metrics_path": "/metrics/cadvisor"}
NODE_EXPORTER = {
    "job": "node-exporter",
    "instance": "worker-1",  # relabelled from __meta_kubernetes_pod_node_name
    "endpoint": "http-metrics",
    "service": "kube-prometheus-stack-prometheus-node-exporter",
    "namespace": "monitoring",
    "pod": "kube-prometheus-stack-prometheus-node-exporter-x7k2p",
    "container": "node-exporter",
}
APISERVER = {
    "job": "apiserver",
    "instance": "172.18.0.2:6443",
    "endpoint": "https",
    "service": "kubernetes",
    "namespace": "default",
}
SCHEDULER = {
    "job": "kube-scheduler",
    "instance": "172.18.0.2:10259",
    "endpoint": "http-metrics",
    "service": "kube-prometheus-stack-kube-scheduler",
    "namespace": "kube-system",
    "pod": "kube-scheduler-control-plane",
}
CONTROLLER_MANAGER = {
    "job": "kube-controller-manager",
    "instance": "172.18.0.2:10257",
    "endpoint": "http-metrics",
    "service": "kube-prometheus-stack-kube-controller-manager",
    "namespace": "kube-system",
    "pod": "kube-controller-manager-control-plane",
}


def scraped(target: Mapping[str, str], series: Mapping[str, str], honor_labels: bool = True) -> dict[str, str]:
    """A series as stored: with honor_labels its own labels win; without, they are kept
    as `exported_<name>` beside the target's."""
    if honor_labels:
        return {**target, **series}
    renamed = {(f"exported_{k}" if k in target else k): v for k, v in series.items()}
    return {**target, **renamed}


def by(labels: Mapping[str, str], *keep: str) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k in keep}


def without(labels: Mapping[str, str], *drop: str) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k not in drop}


W, C, I, N = ({"severity": s} for s in ("warning", "critical", "info", "none"))  # noqa: E741


@dataclass(frozen=True)
class Row:
    alert: str
    rule: Mapping[str, str]
    series: Mapping[str, str]
    expected: tuple[str, str | None, str]  # kind, namespace, name

    @property
    def labels(self) -> dict[str, str]:
        # Rule labels override the series'; Prometheus adds its external labels to alerts.
        return {**self.series, **self.rule, "alertname": self.alert, **EXTERNAL}

    @property
    def id(self) -> str:
        return "-".join([self.alert, *self.rule.values()])


def rows(alert: str, rules: Iterable[Mapping[str, str]], series: Mapping[str, str], expected: Any) -> list[Row]:
    return [Row(alert, rule, series, expected) for rule in rules]


POD = "checkout-7d9f8b6c5-qx2lm"
UID = "0b6f5d2e-3c1a-4e8b-9d7f-2a6c4e8b1f3d"
FS = {"device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": "/var/lib/kubelet"}
VOLUME = {"namespace": "shop", "persistentvolumeclaim": "data-postgres-0"}
HPA = {"namespace": "shop", "horizontalpodautoscaler": "frontend"}
QUOTA = {"namespace": "shop", "resourcequota": "compute", "resource": "requests.cpu"}
NODE_1 = ("Node", None, "worker-1")
NODE_2 = ("Node", None, "worker-2")
NODE_3 = ("Node", None, "worker-3")
CLUSTER = ("Cluster", None, "cluster")
ALL_SEVERITIES = [W, C]

TABLE: list[Row] = [
    # ---- kubernetes-apps: kube-state-metrics object series ------------------------------
    *rows(
        "KubePodCrashLooping",
        [W],
        scraped(KSM, {"namespace": "shop", "pod": POD, "uid": UID, "container": "app", "reason": "CrashLoopBackOff"}),
        ("Pod", "shop", POD),
    ),
    *rows(
        "KubePodNotReady",
        [W],
        by(scraped(KSM, {"namespace": "shop", "pod": POD, "uid": UID, "phase": "Pending"}), "namespace", "pod", "job"),
        ("Pod", "shop", POD),
    ),
    *rows(
        "KubeDeploymentGenerationMismatch",
        [W],
        scraped(KSM, {"namespace": "shop", "deployment": "checkout"}),
        ("Deployment", "shop", "checkout"),
    ),
    *rows(
        "KubeDeploymentReplicasMismatch",
        [W],
        scraped(KSM_JSONNET, {"namespace": "shop", "deployment": "checkout"}),
        ("Deployment", "shop", "checkout"),
    ),
    *rows(
        "KubeDeploymentRolloutStuck",
        [W],
        scraped(KSM, {"namespace": "shop", "deployment": "checkout", "condition": "Progressing", "status": "false"}),
        ("Deployment", "shop", "checkout"),
    ),
    *rows(
        "KubeStatefulSetReplicasMismatch",
        [W],
        scraped(KSM, {"namespace": "db", "statefulset": "postgres"}),
        ("StatefulSet", "db", "postgres"),
    ),
    *rows(
        "KubeStatefulSetGenerationMismatch",
        [W],
        scraped(KSM, {"namespace": "db", "statefulset": "postgres"}),
        ("StatefulSet", "db", "postgres"),
    ),
    *rows(
        "KubeStatefulSetUpdateNotRolledOut",
        [W],
        by(
            scraped(KSM, {"namespace": "db", "statefulset": "postgres", "revision": "postgres-5d4"}),
            "namespace",
            "statefulset",
            "job",
        ),
        ("StatefulSet", "db", "postgres"),
    ),
    *rows(
        "KubeDaemonSetRolloutStuck",
        [W],
        scraped(KSM, {"namespace": "kube-system", "daemonset": "cilium"}),
        ("DaemonSet", "kube-system", "cilium"),
    ),
    *rows(
        "KubeContainerWaiting",
        [W],
        scraped(KSM, {"namespace": "shop", "pod": POD, "uid": UID, "container": "app", "reason": "ImagePullBackOff"}),
        ("Pod", "shop", POD),
    ),
    *rows(
        "KubeDaemonSetNotScheduled",
        [W],
        scraped(KSM, {"namespace": "logging", "daemonset": "fluent-bit"}),
        ("DaemonSet", "logging", "fluent-bit"),
    ),
    *rows(
        "KubeDaemonSetMisScheduled",
        [W],
        scraped(KSM_JSONNET, {"namespace": "logging", "daemonset": "fluent-bit"}),
        ("DaemonSet", "logging", "fluent-bit"),
    ),
    *rows(
        "KubeJobNotCompleted",
        [W],
        by(scraped(KSM, {"namespace": "batch", "job_name": "nightly-report-28930140"}), "namespace", "job_name"),
        ("Job", "batch", "nightly-report-28930140"),
    ),
    *rows(
        "KubeJobFailed",
        [W],
        scraped(KSM, {"namespace": "batch", "job_name": "nightly-report-28930140", "condition": "true"}),
        ("Job", "batch", "nightly-report-28930140"),
    ),
    *rows("KubeHpaReplicasMismatch", [W], scraped(KSM, HPA), ("HorizontalPodAutoscaler", "shop", "frontend")),
    *rows("KubeHpaMaxedOut", [W], scraped(KSM_JSONNET, HPA), ("HorizontalPodAutoscaler", "shop", "frontend")),
    *rows(
        "KubePdbNotEnoughHealthyPods",
        [W],
        scraped(KSM, {"namespace": "shop", "poddisruptionbudget": "checkout"}),
        ("PodDisruptionBudget", "shop", "checkout"),
    ),
    # ---- kubernetes-resources ------------------------------------------------------------
    *rows("KubeCPUOvercommit", [W], {}, CLUSTER),  # sum by (cluster): no cluster label here
    *rows("KubeMemoryOvercommit", [W], {}, CLUSTER),
    *rows("KubeCPUQuotaOvercommit", [W], {}, CLUSTER),
    *rows("KubeMemoryQuotaOvercommit", [W], {}, CLUSTER),
    # max without (instance, job, type): the exporter's pod and service stay, `job` does not.
    *rows(
        "KubeQuotaAlmostFull",
        [I],
        without(scraped(KSM, {**QUOTA, "type": "used"}), "instance", "job", "type"),
        ("Namespace", None, "shop"),
    ),
    *rows(
        "KubeQuotaFullyUsed",
        [I],
        without(scraped(KSM, {**QUOTA, "type": "used"}), "instance", "job", "type"),
        ("Namespace", None, "shop"),
    ),
    *rows(
        "KubeQuotaExceeded",
        [W],
        without(scraped(KSM_JSONNET, {**QUOTA, "type": "used"}), "instance", "job", "type"),
        ("Namespace", None, "shop"),
    ),
    *rows(
        "CPUThrottlingHigh",
        [I],
        without(
            scraped(
                CADVISOR,
                {
                    "namespace": "shop",
                    "pod": POD,
                    "container": "app",
                    "id": f"/kubepods/burstable/pod{UID}/3f1c",
                    "image": "registry.example/checkout:2.14.0",
                    "name": "3f1c9a",
                },
            ),
            *("id", "metrics_path", "name", "image", "endpoint", "job", "node"),
        ),
        ("Pod", "shop", POD),
    ),
    # ---- kubernetes-storage: kubelet volume stats carry the claim and the mounting node --
    *rows(
        "KubePersistentVolumeFillingUp",
        ALL_SEVERITIES,
        scraped(KUBELET, VOLUME),
        ("PersistentVolumeClaim", "shop", "data-postgres-0"),
    ),
    *rows(
        "KubePersistentVolumeInodesFillingUp",
        ALL_SEVERITIES,
        scraped(KUBELET, VOLUME),
        ("PersistentVolumeClaim", "shop", "data-postgres-0"),
    ),
    *rows(
        "KubePersistentVolumeErrors",
        [C],
        scraped(KSM, {"persistentvolume": "pvc-3f9c2a7e", "phase": "Failed"}),
        ("PersistentVolume", None, "pvc-3f9c2a7e"),
    ),
    # ---- kubernetes-system / apiserver -------------------------------------------------
    *rows("KubeVersionMismatch", [W], {}, CLUSTER),
    *rows(
        "KubeClientErrors",
        [W],
        by(
            scraped(APISERVER, {"code": "503", "host": "10.96.0.1:443", "method": "GET"}),
            "instance",
            "job",
            "namespace",
        ),
        ("Service", "default", "apiserver"),
    ),
    *[
        Row("KubeAPIErrorBudgetBurn", {"long": long, "severity": sev, "short": short}, {}, CLUSTER)
        for long, short, sev in (
            ("1h", "5m", "critical"),
            ("6h", "30m", "critical"),
            ("1d", "2h", "warning"),
            ("3d", "6h", "warning"),
        )
    ],
    *rows(
        "KubeClientCertificateExpiration",
        ALL_SEVERITIES,
        without(scraped(APISERVER, {}), "namespace", "service", "endpoint"),
        CLUSTER,
    ),
    *rows(
        "KubeAggregatedAPIErrors",
        [W],
        {"instance": "172.18.0.2:6443", "name": "v1beta1.metrics.k8s.io", "reason": "MissingEndpoints"},
        CLUSTER,
    ),
    # the aggregator's series carry only the apiserver target's namespace
    *rows("KubeAggregatedAPIDown", [W], {"name": "v1beta1.metrics.k8s.io", "namespace": "default"}, CLUSTER),
    *rows("KubeAPIDown", [C], {"job": "apiserver"}, CLUSTER),  # absent() keeps the matcher's labels
    *rows("KubeAPIInstanceUnreachable", [W], dict(APISERVER), ("Service", "default", "kubernetes")),
    *rows("KubeAPITerminatedRequests", [W], {}, CLUSTER),
    # ---- kubernetes-system-kubelet ---------------------------------------------------------
    *rows(
        "KubeNodeNotReady",
        [W],
        scraped(KSM, {"node": "worker-3", "condition": "Ready", "status": "true"}),
        NODE_3,
    ),
    *rows(
        "KubeNodePressure",
        [I],
        scraped(KSM_JSONNET, {"node": "worker-3", "condition": "DiskPressure", "status": "true"}),
        NODE_3,
    ),
    *rows(
        "KubeNodeUnreachable",
        [W],
        scraped(
            KSM, {"node": "worker-3", "key": "node.kubernetes.io/unreachable", "value": "", "effect": "NoSchedule"}
        ),
        NODE_3,
    ),
    *rows("KubeletTooManyPods", [I], {"instance": "172.18.0.4:10250", "node": "worker-2"}, NODE_2),
    *rows("KubeNodeReadinessFlapping", [W], {"node": "worker-3"}, NODE_3),
    *rows(
        "KubeNodeEviction",
        [I],
        {"eviction_signal": "memory.available", "instance": "172.18.0.4:10250", "node": "worker-2"},
        NODE_2,
    ),
    *rows(
        "KubeletPlegDurationHigh", [W], {"instance": "172.18.0.4:10250", "node": "worker-2", "quantile": "0.99"}, NODE_2
    ),
    *rows("KubeletPodStartUpLatencyHigh", [W], {"instance": "172.18.0.4:10250", "node": "worker-2"}, NODE_2),
    *rows("KubeletClientCertificateExpiration", ALL_SEVERITIES, scraped(KUBELET, {}), NODE_2),
    *rows("KubeletServerCertificateExpiration", ALL_SEVERITIES, scraped(KUBELET, {}), NODE_2),
    *rows("KubeletClientCertificateRenewalErrors", [W], scraped(KUBELET, {}), NODE_2),
    *rows("KubeletServerCertificateRenewalErrors", [W], scraped(KUBELET, {}), NODE_2),
    *rows("KubeletInstanceUnreachable", [W], dict(KUBELET), NODE_2),
    *rows("KubeletDown", [C], {}, CLUSTER),
    *rows("KubeSchedulerDown", [C], {"job": "kube-scheduler"}, CLUSTER),
    *rows(
        "KubeSchedulerInstanceUnreachable",
        [W],
        dict(SCHEDULER),
        ("Service", "kube-system", "kube-prometheus-stack-kube-scheduler"),
    ),
    *rows("KubeControllerManagerDown", [C], {"job": "kube-controller-manager"}, CLUSTER),
    *rows(
        "KubeControllerManagerInstanceUnreachable",
        [W],
        dict(CONTROLLER_MANAGER),
        ("Service", "kube-system", "kube-prometheus-stack-kube-controller-manager"),
    ),
    # ---- kube-state-metrics' own health: summed by cluster ---------------------------------
    *rows("KubeStateMetricsListErrors", [C], {}, CLUSTER),
    *rows("KubeStateMetricsWatchErrors", [C], {}, CLUSTER),
    *rows("KubeStateMetricsShardingMismatch", [C], {}, CLUSTER),
    *rows("KubeStateMetricsShardsMissing", [C], {}, CLUSTER),
    # ---- node-exporter: the node named by `instance`, never the exporter's pod -------------
    *rows("NodeFilesystemSpaceFillingUp", ALL_SEVERITIES, scraped(NODE_EXPORTER, FS), NODE_1),
    *rows("NodeFilesystemAlmostOutOfSpace", ALL_SEVERITIES, scraped(NODE_EXPORTER, FS), NODE_1),
    *rows("NodeFilesystemFilesFillingUp", ALL_SEVERITIES, scraped(NODE_EXPORTER, FS), NODE_1),
    *rows("NodeFilesystemAlmostOutOfFiles", ALL_SEVERITIES, scraped(NODE_EXPORTER, FS), NODE_1),
    *rows("NodeNetworkReceiveErrs", [W], scraped(NODE_EXPORTER, {"device": "eth0"}), NODE_1),
    *rows("NodeNetworkTransmitErrs", [W], scraped(NODE_EXPORTER, {"device": "eth0"}), NODE_1),
    *rows("NodeHighNumberConntrackEntriesUsed", [W], dict(NODE_EXPORTER), NODE_1),
    *rows("NodeTextFileCollectorScrapeError", [W], dict(NODE_EXPORTER), NODE_1),
    *rows("NodeClockSkewDetected", [W], dict(NODE_EXPORTER), NODE_1),
    *rows("NodeClockNotSynchronising", [W], dict(NODE_EXPORTER), NODE_1),
    *rows("NodeRAIDDegraded", [C], scraped(NODE_EXPORTER, {"device": "md0"}), NODE_1),
    *rows("NodeRAIDDiskFailure", [W], scraped(NODE_EXPORTER, {"device": "md0", "state": "failed"}), NODE_1),
    *rows("NodeFileDescriptorLimit", ALL_SEVERITIES, dict(NODE_EXPORTER), NODE_1),
    *rows("NodeCPUHighUsage", [I], dict(NODE_EXPORTER), NODE_1),  # without (mode), without (cpu)
    *rows("NodeSystemSaturation", [W], dict(NODE_EXPORTER), NODE_1),
    *rows("NodeMemoryMajorPagesFaults", [W], dict(NODE_EXPORTER), NODE_1),
    *rows("NodeMemoryHighUtilization", [W], dict(NODE_EXPORTER), NODE_1),
    *rows("NodeDiskIOSaturation", [W], scraped(NODE_EXPORTER, {"device": "nvme0n1"}), NODE_1),
    *rows(
        "NodeSystemdServiceFailed",
        [W],
        scraped(NODE_EXPORTER, {"name": "containerd.service", "state": "failed", "type": "notify"}),
        NODE_1,
    ),
    *rows("NodeSystemdServiceCrashlooping", [W], scraped(NODE_EXPORTER, {"name": "containerd.service"}), NODE_1),
    *rows("NodeBondingDegraded", [W], scraped(NODE_EXPORTER, {"master": "bond0"}), NODE_1),
    *rows("NodeNetworkInterfaceFlapping", [W], scraped(NODE_EXPORTER, {"device": "eth1"}), NODE_1),
    # ---- general ---------------------------------------------------------------------------
    *rows(
        "TargetDown",
        [W],
        {"job": "checkout", "namespace": "shop", "service": "checkout"},
        ("Service", "shop", "checkout"),
    ),
    *rows("Watchdog", [N], {}, CLUSTER),
    *rows("InfoInhibitor", [N], {"namespace": "shop"}, ("Namespace", None, "shop")),
]

CONTRACT_KINDS = {
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "PersistentVolumeClaim",
    "Node",
    "Service",
    "Namespace",
    "Cluster",
}
OBJECT_ROWS = [row for row in TABLE if row.expected[0] not in ("Service", "Namespace", "Cluster")]


def alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def found(resolution: Resolution) -> tuple[str, str | None, str]:
    subject = resolution.subject
    return subject.kind, subject.namespace, subject.name


# ---- the table --------------------------------------------------------------------------


def test_every_alerting_rule_of_kube_prometheus_has_a_row() -> None:
    rules = alerting_rules()
    covered = {(row.alert, tuple(sorted(row.rule.items()))) for row in TABLE}
    missing = [r["alert"] for r in rules if (r["alert"], tuple(sorted(r.get("labels", {}).items()))) not in covered]
    assert len(rules) == 97
    assert missing == []
    assert len(TABLE) == len(rules)


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.id)
def test_each_rule_resolves_to_the_object_it_is_about(row: Row) -> None:
    assert found(resolve(row.labels)) == row.expected


# ---- the three cases of issue 15 --------------------------------------------------------


@pytest.mark.parametrize("target", [KSM, KSM_JSONNET], ids=["kube-prometheus-stack", "kube-prometheus"])
def test_hpa_maxed_out_is_about_the_hpa_not_kube_state_metrics(target: dict[str, str]) -> None:
    labels = {**scraped(target, HPA), "alertname": "KubeHpaMaxedOut", "severity": "warning"}

    assert resolve_subject(labels) == Subject("HorizontalPodAutoscaler", "frontend", "shop")


def test_node_filesystem_almost_out_of_space_is_about_the_node_not_the_exporter_pod() -> None:
    labels = {**scraped(NODE_EXPORTER, FS), "alertname": "NodeFilesystemAlmostOutOfSpace", "severity": "critical"}

    assert resolve_subject(labels) == Subject("Node", "worker-1", None)


@pytest.mark.parametrize("target", [KUBELET, without(KUBELET, "service", "endpoint")], ids=["service", "no-service"])
def test_persistent_volume_filling_up_is_about_the_claim_and_the_node_is_only_where_it_is_mounted(
    target: dict[str, str],
) -> None:
    labels = {**scraped(target, VOLUME), "alertname": "KubePersistentVolumeFillingUp", "severity": "critical"}

    resolution = resolve(labels)

    assert resolution.subject == Subject("PersistentVolumeClaim", "data-postgres-0", "shop")
    assert resolution.related == (Subject("Node", "worker-2", None),)


# ---- properties -------------------------------------------------------------------------

label_values = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.:/", min_size=1, max_size=30)
TARGET_LABELS = ("instance", "endpoint", "service", "prometheus", "cluster")
OBJECT_LABELS = (
    "namespace",
    "pod",
    "container",
    "deployment",
    "statefulset",
    "daemonset",
    "replicaset",
    "job_name",
    "cronjob",
    "horizontalpodautoscaler",
    "persistentvolumeclaim",
    "persistentvolume",
    "poddisruptionbudget",
    "resourcequota",
    "node",
)


@given(
    row=st.sampled_from(OBJECT_ROWS),
    added=st.dictionaries(st.sampled_from(TARGET_LABELS), label_values),
    exporter_pod=st.booleans(),
)
def test_exporter_and_target_labels_never_change_an_object_subject(
    row: Row, added: dict[str, str], exporter_pod: bool
) -> None:
    labels = row.labels
    extra = {k: v for k, v in added.items() if k not in labels}
    if exporter_pod and "job" in labels and "pod" not in labels:
        extra["pod"] = f"{labels['job']}-5c9d8-x7k2p"  # the scrape target's own pod

    assert resolve({**labels, **extra}).subject == resolve(labels).subject


@given(row=st.sampled_from(TABLE), alertname=st.sampled_from([r.alert for r in TABLE]) | label_values)
def test_the_alertname_never_influences_the_resolution(row: Row, alertname: str) -> None:
    assert resolve({**row.labels, "alertname": alertname}) == resolve(row.labels)


@given(row=st.sampled_from(OBJECT_ROWS), exporter_values=st.data())
def test_exported_labels_win_over_the_targets_own(row: Row, exporter_values: st.DataObject) -> None:
    labels = row.labels
    renamed = dict(labels)
    for key in OBJECT_LABELS:
        if key in labels:
            renamed[f"exported_{key}"] = labels[key]
            renamed[key] = exporter_values.draw(label_values, label=key)

    assert resolve(renamed).subject == resolve(labels).subject


# ---- what the labels mean, case by case -------------------------------------------------


def test_without_honor_labels_the_exported_object_wins_over_the_exporters_pod() -> None:
    series = {"namespace": "shop", "pod": POD, "container": "app", "uid": UID}
    no_honor = {
        "job": "kube-state-metrics",
        "namespace": "monitoring",
        "pod": KSM_POD,
        "container": "kube-state-metrics",
    }

    assert resolve_subject(scraped(no_honor, series, honor_labels=False)) == Subject("Pod", POD, "shop", "app")


def test_node_exporter_instance_with_a_port_names_the_node() -> None:
    labels = scraped({**NODE_EXPORTER, "instance": "worker-1:9100"}, FS)

    assert resolve_subject(labels) == Subject("Node", "worker-1", None)


def test_a_users_own_rule_on_node_exporter_series_without_job_resolves_to_the_node() -> None:
    assert resolve_subject({"instance": "worker-4:9100", **FS, "alertname": "DiskAlmostFull"}) == Subject(
        "Node", "worker-4", None
    )


def test_a_cadvisor_device_series_stays_about_its_pod() -> None:
    labels = scraped(CADVISOR, {"namespace": "shop", "pod": POD, "container": "app", "device": "/dev/sda"})

    resolution = resolve(labels)

    assert resolution.subject == Subject("Pod", POD, "shop", "app")
    assert resolution.related == (Subject("Node", "worker-2", None),)


def test_a_leaked_exporter_container_is_not_the_pods_container() -> None:
    labels = scraped(KSM_JSONNET, {"namespace": "shop", "pod": POD, "uid": UID, "phase": "Pending"})

    assert resolve_subject(labels) == Subject("Pod", POD, "shop")


def test_the_exporters_own_pod_is_the_subject_when_its_own_series_describe_it() -> None:
    series = {"namespace": "monitoring", "pod": KSM_POD, "uid": UID, "container": "kube-state-metrics"}

    assert resolve_subject(scraped(KSM, series)) == Subject("Pod", KSM_POD, "monitoring", "kube-state-metrics")


def test_the_exporters_pod_is_the_subject_when_nothing_else_names_one() -> None:
    assert resolve_subject({"namespace": "monitoring", "pod": KSM_POD}) == Subject("Pod", KSM_POD, "monitoring")


def test_a_down_target_is_its_service_with_its_pod_related() -> None:
    resolution = resolve(SCHEDULER)

    assert resolution.subject == Subject("Service", "kube-prometheus-stack-kube-scheduler", "kube-system")
    assert resolution.related == (Subject("Pod", "kube-scheduler-control-plane", "kube-system"),)


def test_an_application_alert_keeping_job_and_service_is_about_the_service() -> None:
    labels = {"job": "checkout", "namespace": "shop", "service": "checkout", "pod": POD, "instance": "10.244.2.7:8080"}

    resolution = resolve(labels)

    assert resolution.subject == Subject("Service", "checkout", "shop")
    assert resolution.related == (Subject("Pod", POD, "shop"),)


def test_a_pods_owner_and_node_are_related() -> None:
    series = {"namespace": "shop", "pod": POD, "uid": UID, "node": "worker-2"}
    series |= {"created_by_kind": "ReplicaSet", "created_by_name": "checkout-7d9f8b6c5"}

    resolution = resolve(scraped(KSM, series))

    assert resolution.subject == Subject("Pod", POD, "shop")
    assert resolution.related == (
        Subject("ReplicaSet", "checkout-7d9f8b6c5", "shop"),
        Subject("Node", "worker-2", None),
    )


def test_an_hpas_scale_target_is_related() -> None:
    series = {**HPA, "scaletargetref_kind": "Deployment", "scaletargetref_name": "frontend"}

    assert resolve(scraped(KSM, series)).related == (Subject("Deployment", "frontend", "shop"),)


def test_a_jobs_cronjob_is_related() -> None:
    series = {"namespace": "batch", "job_name": "nightly-28930140", "owner_kind": "CronJob", "owner_name": "nightly"}

    resolution = resolve(scraped(KSM, series))

    assert resolution.subject == Subject("Job", "nightly-28930140", "batch")
    assert resolution.related == (Subject("CronJob", "nightly", "batch"),)


def test_a_cronjob_label_names_the_cronjob() -> None:
    assert resolve_subject(scraped(KSM, {"namespace": "batch", "cronjob": "nightly"})) == Subject(
        "CronJob", "nightly", "batch"
    )


def test_a_claim_joined_with_its_mounting_pod_stays_about_the_claim() -> None:
    labels = {**scraped(KUBELET, VOLUME), "pod": "postgres-0"}

    resolution = resolve(labels)

    assert resolution.subject == Subject("PersistentVolumeClaim", "data-postgres-0", "shop")
    assert resolution.related == (Subject("Pod", "postgres-0", "shop"), Subject("Node", "worker-2", None))


def test_a_quota_alert_is_about_its_namespace_with_the_quota_related() -> None:
    resolution = resolve({**QUOTA})

    assert resolution.subject == Subject("Namespace", "shop", None)
    assert resolution.related == (Subject("ResourceQuota", "compute", "shop"),)


def test_nothing_named_is_the_cluster_which_resolve_subject_reports_as_none() -> None:
    assert found(resolve({"alertname": "Watchdog"})) == CLUSTER
    assert resolve_subject({"alertname": "Watchdog"}) is None


def test_subjects_serialise_with_the_api_contracts_kind_names() -> None:
    # PersistentVolume and PodDisruptionBudget are named as Kubernetes names them; the
    # contract's list has no entry for them yet.
    for row in TABLE:
        as_json = resolve(row.labels).subject.to_json()
        assert as_json["kind"] in CONTRACT_KINDS | {"PersistentVolume", "PodDisruptionBudget"}
        assert (as_json["kind"], as_json["namespace"], as_json["name"]) == row.expected


label_names = st.sampled_from(OBJECT_LABELS) | st.sampled_from([f"exported_{n}" for n in OBJECT_LABELS])


@given(labels=st.dictionaries(label_names | st.just("exported_exported_pod"), st.sampled_from(["", " ", "x", " y "])))
def test_the_rules_read_each_label_as_label_value_does(labels: dict[str, str]) -> None:
    # The rules read a one-pass table of the labels; it must answer like label_value.
    view = _Labels(labels)
    names = {*labels, *(n.removeprefix("exported_") for n in labels), *OBJECT_LABELS}

    assert {n: view.value(n) for n in names} == {n: label_value(labels, n) for n in names}
