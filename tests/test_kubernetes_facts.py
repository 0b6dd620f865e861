"""Pure shaping of Kubernetes objects into facts, on the real fixture objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from enrichers.kubernetes.enricher import kubernetes_edges, workload_of_pod
from enrichers.kubernetes.facts import (
    label_selector,
    newest_rollout,
    node_facts,
    pod_facts,
    pod_verdict,
    service_facts,
    warning_events,
    workload_facts,
    worst_pod,
)
from enrichers.kubernetes.subject import Subject, resolve_subject
from tests.fakes.kube_api import (
    K3S_CRASHLOOP_POD,
    items_of,
    load_fixture,
    replicaset_for,
)

K3S_NOW = datetime(2025, 9, 11, 20, 56, 27, tzinfo=UTC)  # 3m after the last crash


def k3s_pod(name: str) -> dict[str, Any]:
    pods = items_of("k8s_podlist_crashloopbackoff_k3s.json")
    return next(p for p in pods if p["metadata"]["name"] == name)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (
            {"namespace": "shop", "pod": "checkout-7d9f", "container": "app", "job": "ksm"},
            Subject("Pod", "checkout-7d9f", "shop", "app"),
        ),
        (
            {
                "namespace": "monitoring",
                "pod": "ksm-0",
                "exported_namespace": "shop",
                "exported_pod": "checkout-7d9f",
            },
            Subject("Pod", "checkout-7d9f", "shop"),
        ),
        (
            {"namespace": "shop", "deployment": "checkout"},
            Subject("Deployment", "checkout", "shop"),
        ),
        ({"namespace": "db", "statefulset": "pg"}, Subject("StatefulSet", "pg", "db")),
        (
            {"namespace": "kube-system", "daemonset": "cilium"},
            Subject("DaemonSet", "cilium", "kube-system"),
        ),
        (
            {"namespace": "batch", "job_name": "nightly", "job": "kube-state-metrics"},
            Subject("Job", "nightly", "batch"),
        ),
        (
            {"namespace": "shop", "replicaset": "checkout-7d9f"},
            Subject("ReplicaSet", "checkout-7d9f", "shop"),
        ),
        (
            {"namespace": "shop", "service": "checkout", "job": "checkout"},
            Subject("Service", "checkout", "shop"),
        ),
        ({"node": "worker-1", "job": "kube-state-metrics"}, Subject("Node", "worker-1", None)),
        (  # a scrape job is the scrape target, not a Kubernetes Job
            {"job": "kube-state-metrics", "namespace": "monitoring"},
            Subject("Service", "kube-state-metrics", "monitoring"),
        ),
        (
            {"namespace": "shop", "pod": "checkout-7d9f", "container": "POD"},
            Subject("Pod", "checkout-7d9f", "shop"),
        ),
    ],
)
def test_subject_is_the_most_specific_object_the_labels_name(labels: dict[str, str], expected: Subject) -> None:
    assert expected == resolve_subject(labels)


@pytest.mark.parametrize(
    "labels",
    [
        {"alertname": "Watchdog"},
        {"pod": "checkout-7d9f"},  # a namespaced name without its namespace
    ],
)
def test_labels_without_a_kubernetes_object_resolve_to_nothing(labels: dict[str, str]) -> None:
    assert resolve_subject(labels) is None


def test_crashlooping_pod_facts_from_the_k3s_snapshot() -> None:
    facts = pod_facts(k3s_pod(K3S_CRASHLOOP_POD))
    container = facts.container("api-server")
    assert container is not None
    assert (facts.phase, facts.ready, facts.node) == ("Running", False, "c9b7eea91")
    assert facts.owner is not None
    assert (facts.owner.kind, facts.owner.name) == ("ReplicaSet", "backend-api-75fb46b7bd")
    assert (container.restarts, container.waiting_reason) == (5, "CrashLoopBackOff")
    assert container.last_termination is not None
    assert (container.last_termination.reason, container.last_termination.exit_code) == ("Error", 1)
    assert dict(container.limits) == {"cpu": "200m", "memory": "256Mi"}
    json.dumps(facts.to_json())


def test_verdict_of_a_crashlooping_pod() -> None:
    verdict = pod_verdict(pod_facts(k3s_pod(K3S_CRASHLOOP_POD)), K3S_NOW)
    assert f"{K3S_CRASHLOOP_POD}: CrashLoopBackOff, 5 restarts, last Error (exit 1) 3m ago" == verdict


def test_verdict_of_an_oomkilled_pod_names_the_memory_limit() -> None:
    pod = items_of("k8s_podlist_oomkilled_minikube.json")[0]
    now = datetime(2023, 7, 11, 4, 48, 25, tzinfo=UTC)
    expected = "oom-kill-job3-gbb89: Failed, OOMKilled (exit 137) 5m ago, memory limit 100Mi"
    assert expected == pod_verdict(pod_facts(pod), now)


def test_verdict_of_a_container_that_cannot_run_shows_its_last_termination() -> None:
    pod = items_of("k8s_podlist_crashloopbackoff_containercannotrun_minikube.json")[0]
    now = datetime(2023, 7, 11, 3, 34, 15, tzinfo=UTC)
    expected = "init-demo: CrashLoopBackOff, 4 restarts, last ContainerCannotRun (exit 127) 1m ago"
    assert expected == pod_verdict(pod_facts(pod), now)


def test_the_worst_pod_is_the_crashlooping_one() -> None:
    pods = [pod_facts(p) for p in items_of("k8s_podlist_crashloopbackoff_k3s.json")]
    worst = worst_pod(pods)
    assert worst is not None
    assert worst.name == K3S_CRASHLOOP_POD


def test_warning_events_fold_by_reason_with_counts_and_last_seen() -> None:
    events = items_of("k8s_eventlist_unhealthy_backoff_minikube.json")
    folded = {e.reason: e for e in warning_events(events, since=None, limit=50)}
    unhealthy = folded["Unhealthy"]
    assert unhealthy.count == 69  # 60 + 9, two events of one pod
    assert datetime(2023, 7, 10, 5, 26, 15, tzinfo=UTC) == unhealthy.last_seen
    assert "Scheduled" not in folded  # Normal events are not warnings
    assert {"Pod/failing-liveness-pod"} == set(unhealthy.objects)


def test_warning_events_before_the_window_are_left_out() -> None:
    events = items_of("k8s_eventlist_core_v1_k3s.json")
    since = datetime(2025, 9, 11, 20, 45, tzinfo=UTC)
    assert {e.reason for e in warning_events(events, since)} == {"BackOff", "FailedScheduling"}


def test_the_same_event_from_two_lookups_counts_once() -> None:
    events = items_of("k8s_eventlist_core_v1_k3s.json")
    backoff = [e for e in events if e["reason"] == "BackOff"]
    (folded,) = warning_events(backoff + backoff, since=None)
    assert folded.count == 25


def test_newest_rollout_is_the_highest_revision_of_the_deployment() -> None:
    deployment = items_of("k8s_deploymentlist_k3s.json")[0]
    old = replicaset_for(deployment, "5d4c3b2a1", 1, "2025-09-10T10:00:00Z", image="alpine:3.19")
    new = replicaset_for(deployment, "75fb46b7bd", 2, "2025-09-11T20:50:19Z")
    others = items_of("k8s_replicasetlist_ownerrefs.json")  # owned by other Deployments
    rollout = newest_rollout(deployment, [new, *others, old])
    assert rollout is not None
    assert (rollout.revision, rollout.replicaset) == (2, "backend-api-75fb46b7bd")
    assert rollout.images == ("alpine:latest",)
    assert datetime(2025, 9, 11, 20, 50, 19, tzinfo=UTC) == rollout.started_at


def test_deployment_facts_report_bad_conditions() -> None:
    facts = workload_facts("Deployment", items_of("k8s_deploymentlist_k3s.json")[1])
    expected = "Deployment cpu-intensive-app: 1/3 ready, Available=False: MinimumReplicasUnavailable"
    assert expected == facts.verdict()


def test_node_facts_of_a_healthy_node() -> None:
    facts = node_facts(items_of("k8s_nodelist_k3s.json")[0])
    assert (facts.ready, facts.problems) == (True, ())
    assert facts.verdict() == "node c9b7eea91: Ready"


def test_node_facts_name_pressure_and_not_ready() -> None:
    node = items_of("k8s_nodelist_k3s.json")[0]
    for condition in node["status"]["conditions"]:
        if condition["type"] == "MemoryPressure":
            condition["status"] = "True"
        if condition["type"] == "Ready":
            condition.update(status="Unknown", reason="NodeStatusUnknown")
    facts = node_facts(node)
    assert facts.problems == ("NotReady: NodeStatusUnknown", "MemoryPressure")


def test_a_not_ready_node_keeps_the_ready_condition_s_own_words() -> None:
    node = items_of("k8s_nodelist_k3s.json")[0]
    for condition in node["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition.update(status="Unknown", reason="NodeStatusUnknown")
            condition["message"] = "Kubelet stopped posting node status."
    facts = node_facts(node)
    assert facts.not_ready_message == "Kubelet stopped posting node status."
    assert facts.to_json()["not_ready_message"] == "Kubelet stopped posting node status."


def test_a_ready_node_has_no_not_ready_message() -> None:
    assert node_facts(items_of("k8s_nodelist_k3s.json")[0]).not_ready_message is None


def test_service_facts_count_ready_endpoints() -> None:
    service = items_of("k8s_servicelist_k3s.json")[0]
    slices = items_of("k8s_endpointslicelist_k3s.json")[:1]
    facts = service_facts(service, slices)
    assert (
        facts.endpoints_ready,
        facts.endpoints_total,
        facts.not_ready_pods,
    ) == (0, 1, (K3S_CRASHLOOP_POD,))
    assert facts.selector == "app=backend-api"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        ({"app": "svc1"}, "app=svc1"),  # a Service's plain map
        (
            {
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["web", "api"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ]
            },
            "tier in (web,api),!canary",
        ),
        ({}, None),
        (None, None),
    ],
)
def test_label_selector_in_query_form(selector: object, expected: str | None) -> None:
    assert expected == label_selector(selector)


def test_kubernetes_edges_link_services_to_workloads_and_workloads_to_nodes() -> None:
    pods = items_of("k8s_podlist_crashloopbackoff_k3s.json")
    slices = items_of("k8s_endpointslicelist_k3s.json")
    edges = {(e.caller, e.callee) for e in kubernetes_edges(slices, pods)}
    assert {
        ("backend-api-service", "backend-api"),
        ("cpu-hog-service", "cpu-intensive-app"),
        ("memory-test-service", "memory-hungry-app"),
        ("backend-api", "c9b7eea91"),
        ("cpu-intensive-app", "c9b7eea91"),
        ("memory-hungry-app", "c9b7eea91"),
    } == edges


def test_workload_of_a_job_pod_is_the_job() -> None:
    pod = items_of("k8s_podlist_oomkilled_minikube.json")[0]
    assert workload_of_pod(pod) == "oom-kill-job3"


def test_single_object_fixture_loads() -> None:
    assert load_fixture("k8s_service_single_apiserver_response.json")["kind"] == "Service"


def test_a_crashlooping_init_container_reads_as_kubectl_shows_it() -> None:
    pod = k3s_pod(K3S_CRASHLOOP_POD)
    pod["spec"]["initContainers"] = pod["spec"].pop("containers")
    status = pod["status"]
    status["initContainerStatuses"] = status.pop("containerStatuses")
    status["phase"] = "Pending"
    verdict = pod_verdict(pod_facts(pod), K3S_NOW)
    assert verdict == f"{K3S_CRASHLOOP_POD}: Init:CrashLoopBackOff, 5 restarts, last Error (exit 1) 3m ago"


def test_an_evicted_pod_says_why() -> None:
    pod = k3s_pod("memory-hungry-app-59c695fbfb-4vnq4")
    pod["status"].update(phase="Failed", reason="Evicted", message="The node was low on resource: memory. ")
    verdict = pod_verdict(pod_facts(pod), K3S_NOW)
    assert verdict == "memory-hungry-app-59c695fbfb-4vnq4: Evicted: The node was low on resource: memory."


IMAGE = "registry.example.com/shop/checkout:2.14.1"
REGISTRY_ANSWER = (
    f'Failed to pull image "{IMAGE}": rpc error: code = NotFound desc = failed to pull and unpack image '
    f'"{IMAGE}": failed to resolve reference "{IMAGE}": {IMAGE}: not found'
)


def failed_event(uid: str, message: str, count: int, last_seen: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"checkout-5c9d.{uid}", "namespace": "shop", "uid": uid},
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "checkout-5c9d-x2x7q"},
        "reason": "Failed",
        "message": message,
        "type": "Warning",
        "count": count,
        "lastTimestamp": last_seen,
    }


def test_distinct_messages_of_one_reason_are_kept_with_the_registry_answer_first() -> None:
    """Issue 15: three `Failed` events were merged into the newest, "Error: ImagePullBackOff",
    and the registry's own answer was lost."""
    events = [
        failed_event("a", REGISTRY_ANSWER, 4, "2025-09-11T20:40:00Z"),
        failed_event("b", "Error: ErrImagePull", 4, "2025-09-11T20:40:00Z"),
        failed_event("c", "Error: ImagePullBackOff", 30, "2025-09-11T20:50:00Z"),
    ]
    (failed,) = warning_events(events, since=None)

    assert failed.message == REGISTRY_ANSWER
    assert failed.message.endswith(f"{IMAGE}: not found")
    assert [(m.message, m.count) for m in failed.messages] == [
        (REGISTRY_ANSWER, 4),
        ("Error: ImagePullBackOff", 30),
        ("Error: ErrImagePull", 4),
    ]
    assert failed.count == 38
    assert failed.to_json()["messages"][0]["count"] == 4
    assert "also x30: Error: ImagePullBackOff" in failed.describe(K3S_NOW)


def test_scheduling_and_mount_failures_come_before_generic_back_off() -> None:
    def event(uid: str, reason: str, message: str, last_seen: str) -> dict[str, Any]:
        return {**failed_event(uid, message, 1, last_seen), "reason": reason}

    events = [
        event("1", "BackOff", "Back-off restarting failed container app in pod x", "2025-09-11T20:55:00Z"),
        event("2", "FailedMount", 'MountVolume.SetUp failed for volume "data": not attached', "2025-09-11T20:41:00Z"),
        event("3", "FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu.", "2025-09-11T20:40:00Z"),
    ]
    assert [e.reason for e in warning_events(events, since=None)] == ["FailedScheduling", "FailedMount", "BackOff"]
