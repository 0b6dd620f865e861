"""The watch cache: the same facts as direct reads, no object reads during a storm, and
correct facts through the faults a watch meets (the API server going away, streams cut by
a proxy, 410 Gone, RBAC without watch, an object deleted while an alert is about it)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from enrichers.base import EnrichContext, Enrichment, enrich_batch
from enrichers.kubernetes.cache import WatchSettings
from enrichers.kubernetes.enricher import KubernetesEnricher, KubernetesSettings, connect_kubernetes
from enrichers.kubernetes.trim import trim
from receiver.models import Group
from tests.fakes.kube_api import K3S_CRASHLOOP_POD, FakeKubeApi, k3s_cluster, minikube_oom_cluster
from tests.fakes.kube_objects import ALERT_TIME_TEXT, JOB, NAMESPACE, WORKER_DOWN, shop_cluster
from tests.test_kubernetes_enricher import (
    CRASHLOOP_LABELS,
    K3S_ALERT_TIME,
    OOM_ALERT_TIME,
    alert,
    context,
    serving,
)

SHOP_TIME = datetime.fromisoformat(ALERT_TIME_TEXT)
QUICK = WatchSettings(
    timeout_seconds=30,
    backoff_initial_seconds=0.05,
    backoff_max_seconds=0.2,
    quick_close_seconds=0.01,
    stale_after_seconds=5.0,
)
KSM = {"job": "kube-state-metrics"}
CASES: list[tuple[str, Callable[[], FakeKubeApi], dict[str, str], datetime]] = [
    ("crashloop pod", k3s_cluster, CRASHLOOP_LABELS, K3S_ALERT_TIME),
    (
        "deployment",
        k3s_cluster,
        {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "default", "deployment": "backend-api", **KSM},
        K3S_ALERT_TIME,
    ),
    ("service", k3s_cluster, {"alertname": "X", "namespace": "default", "service": "backend-api"}, K3S_ALERT_TIME),
    (
        "oom pod",
        minikube_oom_cluster,
        {"alertname": "KubePodNotReady", "namespace": "message-oomkill-pod", "pod": "oom-kill-job3-gbb89", **KSM},
        OOM_ALERT_TIME,
    ),
    (
        "claim",
        shop_cluster,
        {
            "alertname": "KubePersistentVolumeFillingUp",
            "namespace": NAMESPACE,
            "persistentvolumeclaim": "data-postgres-0",
            **KSM,
        },
        SHOP_TIME,
    ),
    (
        "hpa",
        shop_cluster,
        {"alertname": "KubeHpaMaxedOut", "namespace": NAMESPACE, "horizontalpodautoscaler": "frontend", **KSM},
        SHOP_TIME,
    ),
    ("job", shop_cluster, {"alertname": "KubeJobFailed", "namespace": NAMESPACE, "job_name": JOB, **KSM}, SHOP_TIME),
    (
        "cronjob",
        shop_cluster,
        {"alertname": "KubeCronJobRunning", "namespace": NAMESPACE, "cronjob": "report", **KSM},
        SHOP_TIME,
    ),
    (
        "statefulset",
        shop_cluster,
        {"alertname": "KubeStatefulSetReplicasMismatch", "namespace": NAMESPACE, "statefulset": "kafka", **KSM},
        SHOP_TIME,
    ),
    (
        "daemonset",
        shop_cluster,
        {"alertname": "KubeDaemonSetRolloutStuck", "namespace": NAMESPACE, "daemonset": "log-agent", **KSM},
        SHOP_TIME,
    ),
    ("node", shop_cluster, {"alertname": "KubeNodeNotReady", "node": WORKER_DOWN, **KSM}, SHOP_TIME),
    (
        "pod pending on an unbound claim",
        shop_cluster,
        {"alertname": "KubePodNotReady", "namespace": NAMESPACE, "pod": "kafka-2", **KSM},
        SHOP_TIME,
    ),
]


class Recorder:
    """What the cache reports, as receiver.metrics would export it."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.objects: dict[str, int] = {}
        self.restarts: Counter[str] = Counter()
        self.up: dict[str, bool] = {}

    def request(self, verb: str, resource: str, code: str) -> None:
        self.requests[(verb, resource, code)] += 1

    def cache_objects(self, resource: str, count: int) -> None:
        self.objects[resource] = count

    def watch_restart(self, resource: str) -> None:
        self.restarts[resource] += 1

    def watch_up(self, resource: str, up: bool) -> None:
        self.up[resource] = up


@asynccontextmanager
async def cached(
    fake: FakeKubeApi, settings: WatchSettings = QUICK, recorder: Recorder | None = None, **options: Any
) -> AsyncIterator[KubernetesEnricher]:
    """An enricher whose watch cache has listed everything from `fake`."""
    fake.bookmark_seconds = 0.05
    url = await fake.start()
    enricher = await connect_kubernetes(
        "auto", None, url, settings=KubernetesSettings(watch_settings=settings, **options)
    )
    assert enricher is not None
    enricher.start(recorder or Recorder())
    try:
        assert enricher.cache is not None
        async with asyncio.timeout(10):
            await enricher.cache.wait_synced()
        yield enricher
    finally:
        await enricher.close()
        await fake.close()


async def caught_up(enricher: KubernetesEnricher, fake: FakeKubeApi, resource: str) -> None:
    """Until the resource's informer has seen every change the server made (bookmarks
    carry the server's version to a quiet informer)."""
    assert enricher.cache is not None
    informer = enricher.cache.informers[(resource, None)]
    async with asyncio.timeout(10):
        while not (informer.fresh and informer.version == str(fake.version)):
            await asyncio.sleep(0.01)


def reading_directly(fake: FakeKubeApi) -> AbstractAsyncContextManager[KubernetesEnricher]:
    return serving(fake, settings=KubernetesSettings(watch=False))


def object_paths(fake: FakeKubeApi) -> list[str]:
    """Gets and lists (not watches, not logs) the API answered."""
    return [r.path for r in fake.requests if not r.path.endswith("/log") and r.query.get("watch") != "True"]


def ctx(at: datetime) -> EnrichContext:
    group = Group(group_key='{}:{alertname="x"}', receiver="kubebot", status="firing")
    return EnrichContext(group=group, now=at + timedelta(minutes=3), timeout_seconds=5.0)


@pytest.mark.parametrize(("case", "cluster", "labels", "at"), CASES, ids=[c[0] for c in CASES])
async def test_facts_from_the_cache_equal_facts_read_directly(
    case: str, cluster: Callable[[], FakeKubeApi], labels: dict[str, str], at: datetime
) -> None:
    async with reading_directly(cluster()) as direct:
        expected = await direct.enrich(alert(labels, at), ctx(at))
    fake = cluster()
    async with cached(fake) as enricher:
        before = len(object_paths(fake))
        found = await enricher.enrich(alert(labels, at), ctx(at))
        assert object_paths(fake)[before:] == [], "every object came from the cache"
    assert expected.status == "ok", expected.reason
    assert (found.status, found.facts, found.summary) == (expected.status, expected.facts, expected.summary)


async def test_a_storm_of_alerts_reads_no_objects_and_each_log_once() -> None:
    fake = k3s_cluster()
    recorder = Recorder()
    async with cached(fake, recorder=recorder) as enricher:
        before = len(object_paths(fake))
        logs_before = fake.count(f"/api/v1/namespaces/default/pods/{K3S_CRASHLOOP_POD}/log")
        for i in range(50):
            group = Group(group_key=f'{{}}:{{n="{i}"}}', receiver="kubebot", status="firing")
            context_i = EnrichContext(group=group, now=K3S_ALERT_TIME, timeout_seconds=5.0)
            result = await enricher.enrich(alert(CRASHLOOP_LABELS), context_i)
            assert result.facts["logs"], "the crash-looping container's previous log"
        objects_read = object_paths(fake)[before:]
        logs_read = fake.count(f"/api/v1/namespaces/default/pods/{K3S_CRASHLOOP_POD}/log") - logs_before
    assert objects_read == []
    assert logs_read == 1, "once, for all 50 alerts"
    assert recorder.up["pods"] is True
    assert recorder.objects["pods"] == len(fake.objects["pods"])


async def test_a_pod_log_is_read_again_after_a_minute() -> None:
    now = [0.0]
    fake = k3s_cluster()
    url = await fake.start()
    settings = KubernetesSettings(watch=False)
    enricher = await connect_kubernetes("auto", None, url, settings=settings, clock=lambda: now[0])
    assert enricher is not None
    try:
        await asyncio.gather(*(enricher.enrich(alert(CRASHLOOP_LABELS), context()) for _ in range(2)))
        await enricher.enrich(alert(CRASHLOOP_LABELS), ctx(K3S_ALERT_TIME))  # another group, same minute
        now[0] = 61.0
        await enricher.enrich(alert(CRASHLOOP_LABELS), ctx(K3S_ALERT_TIME))
    finally:
        await enricher.close()
        await fake.close()
    assert sum(1 for r in fake.requests if r.path.endswith("/log")) == 2


async def test_a_healthy_container_has_no_log_read() -> None:
    fake = k3s_cluster()
    healthy = next(p for p in fake.objects["pods"] if p["metadata"]["name"] != K3S_CRASHLOOP_POD)
    labels = {"alertname": "X", "namespace": "default", "pod": healthy["metadata"]["name"]}
    async with cached(fake) as enricher:
        result = await enricher.enrich(alert(labels), context())
    assert result.facts["pod"]["exists"] is True
    assert not [r for r in fake.requests if r.path.endswith("/log")]


def test_trimmed_objects_drop_what_is_never_read() -> None:
    pod = next(p for p in k3s_cluster().objects["pods"] if p["metadata"]["name"] == K3S_CRASHLOOP_POD)
    trimmed = trim("pods", pod)
    assert "managedFields" not in trimmed["metadata"]
    assert set(trimmed["spec"]) <= {"nodeName", "containers", "initContainers", "volumes", "priority"}
    assert all(set(c) <= {"name", "image", "resources"} for c in trimmed["spec"]["containers"])
    assert trimmed["status"] == pod["status"]
    assert len(repr(trimmed)) < len(repr(pod)) / 2


# ---- faults ---------------------------------------------------------------------------------


def crashloop_restarts(result: Enrichment) -> int:
    (container,) = [c for c in result.facts["pod"]["containers"] if c["name"] == "api-server"]
    return int(container["restarts"])


def restarted(fake: FakeKubeApi, restarts: int) -> None:
    pod = fake.find("pods", K3S_CRASHLOOP_POD, "default")
    changed = {**pod, "status": {**pod["status"]}}
    changed["status"]["containerStatuses"] = [
        {**s, "restartCount": restarts} if s["name"] == "api-server" else s for s in pod["status"]["containerStatuses"]
    ]
    fake.modify(changed)


async def test_the_api_server_going_away_mid_watch_then_coming_back() -> None:
    fake = k3s_cluster()
    recorder = Recorder()
    async with cached(fake, recorder=recorder) as enricher:
        await fake.close()  # every watch cut, nothing listening
        restarted(fake, 99)  # a change made while KubeBot could not see it
        await fake.start()
        await caught_up(enricher, fake, "pods")
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), context())
    assert crashloop_restarts(result) == 99
    assert recorder.restarts["pods"] >= 1


async def test_a_server_gone_for_longer_than_the_staleness_bound_is_not_read_from_the_cache() -> None:
    now = [0.0]
    fake = k3s_cluster()
    fake.bookmark_seconds = 0.05
    url = await fake.start()
    settings = KubernetesSettings(watch_settings=QUICK)
    enricher = await connect_kubernetes("auto", None, url, settings=settings, clock=lambda: now[0])
    assert enricher is not None
    enricher.start()
    try:
        assert enricher.cache is not None
        await enricher.cache.wait_synced()
        await fake.close()
        informer = enricher.cache.informers[("pods", None)]
        async with asyncio.timeout(5):
            while informer.watching:
                await asyncio.sleep(0.01)
        now[0] = 10.0  # beyond stale_after_seconds
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), context(timeout_seconds=1.0))
    finally:
        await enricher.close()
    assert result.status == "unavailable", "no stale page: the direct read failed and says so"


async def test_watches_cut_every_few_seconds_resume_without_relisting() -> None:
    fake = k3s_cluster()
    fake.watch_cut_seconds = 0.2
    recorder = Recorder()
    async with cached(fake, recorder=recorder) as enricher:
        for restarts in (10, 20, 30):
            restarted(fake, restarts)
            await caught_up(enricher, fake, "pods")
            result = await enricher.enrich(alert(CRASHLOOP_LABELS), ctx(K3S_ALERT_TIME + timedelta(minutes=restarts)))
            assert crashloop_restarts(result) == restarts
        async with asyncio.timeout(5):
            while recorder.restarts["pods"] < 3:
                await asyncio.sleep(0.01)
    assert fake.count("/api/v1/pods") - fake.watches("/api/v1/pods") == 1, "listed once"
    assert recorder.up["pods"] is True


async def test_410_gone_relists_and_the_facts_are_current() -> None:
    fake = k3s_cluster()
    recorder = Recorder()
    async with cached(fake, recorder=recorder) as enricher:
        restarted(fake, 42)
        fake.compact()  # the version the informer would resume from is gone
        fake.cut_watches()
        await caught_up(enricher, fake, "pods")
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), context())
    assert crashloop_restarts(result) == 42
    assert fake.count("/api/v1/pods") - fake.watches("/api/v1/pods") >= 2, "listed again"
    assert ("watch", "pods", "410") in recorder.requests or recorder.restarts["pods"] >= 1


async def test_the_cache_counts_what_it_takes_in_by_lists_and_watch_events() -> None:
    """What the heap's settling (receiver/service/heap.py) watches to freeze new objects."""
    fake = k3s_cluster()
    async with cached(fake) as enricher:
        assert enricher.cache is not None
        cache = enricher.cache
        listed = cache.taken_in()
        for restarts in (7, 8, 9):
            restarted(fake, restarts)
            await caught_up(enricher, fake, "pods")
        modified = cache.taken_in()
    assert listed == cache.objects()  # the first lists
    assert modified == listed + 3  # a MODIFIED event each


async def test_rbac_without_watch_falls_back_to_direct_reads_logged_once() -> None:
    fake = k3s_cluster()
    fake.forbid_watch("pods", "events")
    recorder = Recorder()
    with capture_logs() as logs:
        async with cached(fake, recorder=recorder) as enricher:
            restarted(fake, 7)
            first = await enricher.enrich(alert(CRASHLOOP_LABELS), context())
            second = await enricher.enrich(alert(CRASHLOOP_LABELS), ctx(K3S_ALERT_TIME))
    assert crashloop_restarts(first) == crashloop_restarts(second) == 7
    assert first.facts["events"], "events read directly"
    unavailable = [e for e in logs if e["event"] == "kubernetes_watch_unavailable"]
    assert sorted(e["resource"] for e in unavailable) == ["events", "pods"]
    assert recorder.up["pods"] is False
    assert recorder.up["nodes"] is True
    assert ("watch", "pods", "403") in recorder.requests
    assert any(r.path == f"/api/v1/namespaces/default/pods/{K3S_CRASHLOOP_POD}" for r in fake.requests)


async def test_rbac_without_cluster_wide_list_caches_per_namespace() -> None:
    fake = k3s_cluster()
    fake.fail_cluster_wide = {"pods"}
    async with cached(fake) as enricher:
        assert enricher.cache is not None
        await enricher.enrich(alert(CRASHLOOP_LABELS), context())  # direct, and starts the namespace's cache
        scoped = enricher.cache.informers[("pods", "default")]
        async with asyncio.timeout(5):
            await scoped.wait_synced()
        before = len(object_paths(fake))
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), ctx(K3S_ALERT_TIME))
        pod_reads = [p for p in object_paths(fake)[before:] if "/pods" in p]
    assert result.facts["pod"]["exists"] is True
    assert pod_reads == []


async def test_an_object_deleted_while_its_alert_is_in_flight_reads_as_gone() -> None:
    fake = k3s_cluster()
    fake.delay_seconds = 0.0
    async with cached(fake) as enricher:
        fake.remove("pods", K3S_CRASHLOOP_POD)
        await caught_up(enricher, fake, "pods")
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), context())
    assert result.status == "ok"
    assert result.facts["pod"]["exists"] is False
    assert result.facts["events"], "its events outlive it"


async def test_watch_off_reads_directly() -> None:
    fake = k3s_cluster()
    url = await fake.start()
    enricher = await connect_kubernetes("auto", None, url, settings=KubernetesSettings(watch=False))
    assert enricher is not None
    enricher.start(Recorder())
    try:
        assert enricher.cache is None
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), context())
    finally:
        await enricher.close()
        await fake.close()
    assert result.facts["pod"]["exists"] is True
    assert fake.watches() == 0


SIBLINGS = ("kafka-0", "kafka-1", "kafka-2", "log-agent-a1", "log-agent-b2", "log-agent-c3", "web-0", "gone-7f9c")


@pytest.mark.parametrize("watch", [True, False], ids=["watch cache", "direct reads"])
async def test_a_batch_of_sibling_pods_gets_the_facts_each_would_get_alone(watch: bool) -> None:
    """Pods of one workload or node share its reads and facts within a batch; what each
    alert is told must not change for it."""
    at = datetime.fromisoformat(ALERT_TIME_TEXT.replace("Z", "+00:00"))
    alerts = tuple(
        alert({**CRASHLOOP_LABELS, "namespace": NAMESPACE, "pod": name, "container": ""}, at) for name in SIBLINGS
    )
    fake = shop_cluster()
    async with cached(fake) if watch else reading_directly(fake) as enricher:
        alone = [await enricher.enrich(one, ctx(at)) for one in alerts]
        batch = ctx(at)
        batch.alerts = alerts
        together = [found["kubernetes"] for found in await enrich_batch([enricher], alerts, batch)]
    assert [(r.status, r.facts, r.summary) for r in together] == [(r.status, r.facts, r.summary) for r in alone]
    kafka = together[:3]
    assert [[o["kind"], o["name"]] for r in kafka for o in r.facts["owners"]] == [["StatefulSet", "kafka"]] * 3
    assert {r.facts["workload"]["name"] for r in kafka} == {"kafka"}
    nodes = [r.facts.get("node", {}).get("name") for r in together[:5]]
    assert nodes == ["worker-1", "worker-1", None, "worker-1", "worker-2"]
