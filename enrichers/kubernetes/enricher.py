"""The Kubernetes enricher: what an on-call engineer would type into kubectl in the first
five minutes, gathered concurrently within the enrichment budget.

Stages: labels -> subject (k8s_subject) -> reads (k8s_api, shared per alert group) ->
facts (k8s_facts, pure) -> verdict, lines and JSON (k8s_report, pure).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import structlog
from kubernetes_asyncio import client, config

from enrichers import eager
from enrichers.base import AlertInput, EnrichContext, Enrichment
from enrichers.kubernetes.api import KubeApi, LookupFailed, Lookups, NotFound, Reader, Request
from enrichers.kubernetes.cache import Observer, WatchCache, WatchSettings, list_functions
from enrichers.kubernetes.facts import (
    ContainerFacts,
    Json,
    NodeFacts,
    OwnerRef,
    PodFacts,
    Rollout,
    ServiceFacts,
    WorkloadFacts,
    controller_of,
    gone_node,
    gone_pod,
    gone_service,
    gone_workload,
    label_selector,
    newest_rollout,
    node_facts,
    pod_badness,
    pod_facts,
    service_facts,
    warning_events,
    workload_facts,
)
from enrichers.kubernetes.kinds import (
    ClaimFacts,
    CronJobFacts,
    HpaFacts,
    JobFacts,
    VolumeFacts,
    claim_bound,
    claim_facts,
    claims_of_pod,
    cronjob_facts,
    gone_claim,
    gone_cronjob,
    gone_hpa,
    gone_job,
    gone_volume,
    hpa_facts,
    job_facts,
    missing_ordinals,
    newest_job_of,
    not_running,
    requested_on_node,
    statefulset_claims,
    storage_class_of,
    volume_facts,
)
from enrichers.kubernetes.logs_redact import LogExcerpt, log_excerpt
from enrichers.kubernetes.reads import CachedReader, SharedLogReads
from enrichers.kubernetes.report import Findings, facts, summary_lines
from enrichers.kubernetes.subject import Subject, label_value, resolve_subject
from rca.model import Edge

log = structlog.get_logger("kubebot.kubernetes")
T = TypeVar("T")

# Leave the runner's budget a margin so a partial answer is returned rather than cut off.
BUDGET_SHARE = 0.8
MAX_OWNER_DEPTH = 3
SHARED_STEPS_KEY = "kubernetes:shared_steps"  # in the batch's cache (EnrichContext.cache)
# kind -> (RBAC resource, Kind) for what an alert label or an ownerReference can name.
WORKLOADS: Mapping[str, tuple[str, str]] = {
    "Deployment": ("deployments", "Deployment"),
    "StatefulSet": ("statefulsets", "StatefulSet"),
    "DaemonSet": ("daemonsets", "DaemonSet"),
    "ReplicaSet": ("replicasets", "ReplicaSet"),
    "Job": ("jobs", "Job"),
    "CronJob": ("cronjobs", "CronJob"),
}
# Subject kinds read so far; the others (PDB, ResourceQuota, Namespace) are named only.
LOOKED_UP_KINDS = frozenset(
    {"Pod", "Node", "Service", "PersistentVolumeClaim", "PersistentVolume", "HorizontalPodAutoscaler", *WORKLOADS}
)
# Labels node-exporter puts on a filesystem's series: which mount on the node is filling.
FILESYSTEM_LABELS = ("mountpoint", "device", "fstype")
MAX_PENDING_POD_EVENTS = 3  # not-ready pods beyond the worst whose events are read too
OWNER_RESOURCES: Mapping[str, str] = {kind: resource for resource, kind in WORKLOADS.values()}


@dataclass(frozen=True)
class KubernetesSettings:
    """How much the enricher reads; the defaults are written here only."""

    log_lines: int = 50
    events_window_seconds: float = 3600.0
    call_timeout_seconds: float = 3.0
    max_concurrency: int = 8  # API reads in flight (gets and lists; the cache's lists and watches aside)
    max_log_reads: int = 16  # pod log reads in flight, apart from those (see KubeApi)
    max_log_chars: int = 4000  # per excerpt; two excerpts at most per alert
    watch: bool = True  # keep a list+watch cache of the objects read (cache.py)
    log_reuse_seconds: float = 60.0  # one pod's log is read at most this often, shared
    watch_settings: WatchSettings = field(default_factory=WatchSettings)


class KubernetesEnricher:
    """Implements enrichers.base.Enricher. One instance per process, sharing one ApiClient.

    Reads go to the API directly until `start` (the process's start-up) begins the watch
    cache, when `settings.watch` asks for it; then from the cache wherever it is fresh.
    """

    name = "kubernetes"
    steps_eagerly = True  # its reads run (and time out) in Tasks of their own

    def __init__(
        self,
        api_client: client.ApiClient,
        settings: KubernetesSettings = KubernetesSettings(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._api_client = api_client
        self._clock = clock
        self._api = KubeApi(
            api_client,
            call_timeout_seconds=settings.call_timeout_seconds,
            max_concurrency=settings.max_concurrency,
            max_log_reads=settings.max_log_reads,
        )
        self.cache: WatchCache | None = None
        self._answer_now: Callable[[Request], Any] | None = None
        self._reader: Reader = SharedLogReads(self._api, settings.log_reuse_seconds, clock)

    def start(self, observer: Observer | None = None) -> None:
        """Report to `observer` and, with `watch`, begin listing and watching (once)."""
        if observer is not None:
            self._api.observer = observer
        if not self.settings.watch or self.cache is not None:
            return
        functions = list_functions(self._api_client)
        self.cache = WatchCache(functions, settings=self.settings.watch_settings, observer=observer, clock=self._clock)
        self.cache.start()
        cached = CachedReader(self.cache, self._api)
        self._answer_now = cached.answer_now
        self._reader = SharedLogReads(cached, self.settings.log_reuse_seconds, self._clock)

    async def close(self) -> None:
        if self.cache is not None:
            await self.cache.close()
        await self._api.close()

    async def dependency_edges(self, namespace: str | None = None) -> tuple[Edge, ...]:
        """Service -> workload and workload -> node edges for the RCA graph, from the
        EndpointSlices and pods of one namespace (or all). Raises LookupFailed."""
        deadline = asyncio.get_running_loop().time() + self.settings.call_timeout_seconds
        lookups = Lookups(self._reader, {}, deadline, self._answer_now)
        slices, pods = await eager.gather(
            lookups.read(Request("list", "endpointslices", namespace)),
            lookups.read(Request("list", "pods", namespace)),
        )
        return kubernetes_edges(slices["items"], pods["items"])

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        loop = asyncio.get_running_loop()
        started = loop.time()
        subject = resolve_subject(alert.labels)
        if subject is None:
            return Enrichment(
                source=self.name,
                status="ok",
                facts={"subject": None},
                reason="no Kubernetes object named in the alert's labels",
            )
        if subject.kind not in LOOKED_UP_KINDS:
            return Enrichment(
                source=self.name,
                status="ok",
                facts={"subject": subject.to_json()},
                reason=f"no lookups for a {subject.kind} yet",
            )
        deadline = started + ctx.timeout_seconds * BUDGET_SHARE
        lookups = Lookups(self._reader, ctx.cache, deadline, self._answer_now)
        shared = ctx.cache.setdefault(SHARED_STEPS_KEY, {})
        investigation = _Investigation(lookups, self.settings, subject, alert, ctx.now, shared)
        try:
            findings = await investigation.run()
        except LookupFailed as exc:  # the subject itself could not be read
            return Enrichment.unavailable(self.name, exc.reason, loop.time() - started)
        return Enrichment(
            source=self.name,
            status="partial" if findings.failures else "ok",
            facts=facts(findings),
            summary=summary_lines(findings),
            reason="; ".join(findings.failures) if findings.failures else None,
            elapsed_seconds=loop.time() - started,
        )


@dataclass(frozen=True)
class _Claims:
    """A namespace's PersistentVolumeClaims by name. A box of its own so that an empty
    namespace reads as listed, not as unread, when a batch-shared step hands it on."""

    by_name: Mapping[str, Json]


@dataclass
class _Gathered:
    """Filled in by the concurrent steps of one investigation, then frozen into Findings."""

    pod: PodFacts | None = None
    pods: tuple[PodFacts, ...] = ()
    owners: list[OwnerRef] = field(default_factory=list)
    workload: WorkloadFacts | None = None
    rollout: Rollout | None = None
    node: NodeFacts | None = None
    service: ServiceFacts | None = None
    claim: ClaimFacts | None = None
    volume: VolumeFacts | None = None
    hpa: HpaFacts | None = None
    job: JobFacts | None = None
    cronjob: CronJobFacts | None = None
    raw_pods: dict[str, Json] = field(default_factory=dict)  # by name, for a closer look
    claims: _Claims | None = None  # the namespace's claims, listed once per batch (None: not read)
    unbound_claims: tuple[str, ...] = ()  # the subject pod's claims that are not bound
    events: list[Json] = field(default_factory=list)
    logs: list[LogExcerpt] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def take(self, part: _Gathered) -> None:
        """What `part` found, added to this: its lists appended, its other findings set."""
        for name in _GATHERED_FIELDS:
            found = getattr(part, name)
            if isinstance(found, list):
                getattr(self, name).extend(found)
            elif found is not None and found != {} and found != ():
                setattr(self, name, found)


class _Investigation:
    """The reads for one alert. Only the subject's own read may fail the whole enrichment;
    any other failed read is recorded and the rest still reported (status "partial")."""

    def __init__(
        self,
        lookups: Lookups,
        settings: KubernetesSettings,
        subject: Subject,
        alert: AlertInput,
        now: datetime,
        shared: dict[tuple[str, ...], asyncio.Future[_Gathered]] | None = None,
    ) -> None:
        self.lookups = lookups
        self.settings = settings
        self.subject = subject
        self.alert = alert
        self.now = now
        self.found = _Gathered()
        # Steps whose findings are the same for every alert of the batch that takes them.
        self._shared: dict[tuple[str, ...], asyncio.Future[_Gathered]] = shared if shared is not None else {}

    async def run(self) -> Findings:
        by_kind = {
            "Pod": self._pod_subject,
            "Node": self._node_subject,
            "Service": self._service_subject,
            "PersistentVolumeClaim": self._claim_subject,
            "PersistentVolume": self._volume_subject,
            "HorizontalPodAutoscaler": self._hpa_subject,
        }
        await by_kind.get(self.subject.kind, self._workload_subject)()
        since = self.alert.starts_at - timedelta(seconds=self.settings.events_window_seconds)
        found = self.found
        return Findings(
            subject=self.subject,
            alert_time=self.alert.starts_at,
            now=self.now,
            pod=found.pod,
            pods=found.pods,
            owners=tuple(found.owners),
            workload=found.workload,
            rollout=found.rollout,
            node=found.node,
            service=found.service,
            claim=found.claim,
            volume=found.volume,
            hpa=found.hpa,
            job=found.job,
            cronjob=found.cronjob,
            filesystem=self._filesystem(),
            events=warning_events(found.events, since),
            logs=tuple(found.logs),
            failures=tuple(found.failures),
        )

    # ---- subjects ------------------------------------------------------------------------

    async def _pod_subject(self) -> None:
        namespace, name = self._namespace(), self.subject.name
        pod = await self.lookups.read_optional(Request("get", "pods", namespace, name))
        if pod is None:
            self.found.pod = gone_pod(namespace, name)
            # Its events outlive the pod (about an hour) and often say why it went.
            await self._attempt(self._events_of("Pod", name, namespace))
            return
        await self._pod_closer_look(pod, self.subject.container, follow_owners=True, claims=True)

    async def _workload_subject(self) -> None:
        namespace, name = self._namespace(), self.subject.name
        resource, kind = WORKLOADS[self.subject.kind]
        obj = await self.lookups.read_optional(Request("get", resource, namespace, name))
        if obj is None:
            self.found.workload = gone_workload(kind, namespace, name)
            if kind == "Job":
                self.found.job = gone_job(namespace, name)
            if kind == "CronJob":
                self.found.cronjob = gone_cronjob(namespace, name)
            await self._attempt(self._events_of(kind, name, namespace))
            return
        self.found.workload = workload_facts(kind, obj)
        steps: list[Awaitable[Any]] = [
            self._events_of(kind, name, namespace),
            self._pods_selected(_selector_of(obj)),
        ]
        if kind == "Deployment":
            steps.append(self._rollout(obj))
        if kind == "CronJob":
            steps.append(self._newest_job(obj))
        await self._all(steps)
        if kind == "Job":
            self.found.job = job_facts(obj, self.found.pods)
        if kind in ("StatefulSet", "DaemonSet", "Deployment", "ReplicaSet"):
            await self._all([self._why_not_running(kind, obj)])
        await self._closer_look_at_worst()

    async def _newest_job(self, cronjob: Json) -> None:
        """A CronJob's facts, then its most recent Job, that Job's pods and events."""
        self.found.cronjob = cronjob_facts(cronjob)
        listing = await self.lookups.read(Request("list", "jobs", self._namespace()))
        newest = newest_job_of(self.subject.name, [j for j in listing["items"] if isinstance(j, dict)])
        if newest is None:
            return
        await self._pods_selected(_selector_of(newest))
        job = job_facts(newest, self.found.pods)
        self.found.job = job
        self.found.cronjob = cronjob_facts(cronjob, job)
        await self._events_of("Job", job.name, self._namespace())

    async def _why_not_running(self, kind: str, obj: Json) -> None:
        """For the pods that should run and do not: the scheduler's and kubelet's why, the
        claims they wait for, and (StatefulSet) the pods never created."""
        workload, pods = self.found.workload, self.found.pods
        if workload is None:
            return
        troubled = [p for p in pods if not p.ready and p.phase != "Succeeded"]
        missing = missing_ordinals(obj, pods) if kind == "StatefulSet" else ()
        templated = statefulset_claims(obj) if kind == "StatefulSet" else ()
        if not troubled and not missing:
            return
        wanted_claims = bool(templated) or any(claims_of_pod(self.found.raw_pods.get(p.name, {})) for p in troubled)
        claims: dict[str, Json] = {}
        steps: list[Awaitable[Any]] = [
            self._events_of("Pod", p.name, self._namespace()) for p in troubled[1 : 1 + MAX_PENDING_POD_EVENTS]
        ]
        if wanted_claims:
            steps.append(self._claims_into(claims))
        await self._all(steps)
        lines, unbound = not_running(troubled, self.found.raw_pods, claims)
        unbound += tuple(c for c in templated if c in claims and not claim_bound(claims[c]))
        unbound = tuple(dict.fromkeys(unbound))
        self.found.workload = replace(workload, not_running=lines, unbound_claims=unbound, missing_pods=missing)
        # Why a claim does not bind is in its own events (a StorageClass that does not exist).
        await self._all(
            [self._events_of("PersistentVolumeClaim", c, self._namespace()) for c in unbound[:MAX_PENDING_POD_EVENTS]]
        )

    async def _claims_into(self, claims: dict[str, Json]) -> None:
        listing = await self.lookups.read(Request("list", "persistentvolumeclaims", self._namespace()))
        for claim in listing["items"]:
            name = claim.get("metadata", {}).get("name") if isinstance(claim, dict) else None
            if isinstance(name, str):
                claims[name] = claim

    async def _claim_subject(self) -> None:
        namespace, name = self._namespace(), self.subject.name
        claim = await self.lookups.read_optional(Request("get", "persistentvolumeclaims", namespace, name))
        if claim is None:
            self.found.claim = gone_claim(namespace, name)
            await self._attempt(self._events_of("PersistentVolumeClaim", name, namespace))
            return
        class_name = storage_class_of(claim)
        class_request = Request("get", "storageclasses", None, class_name) if class_name else None
        storage_class, pods, _ = await eager.gather(
            self._attempt(self.lookups.read_optional(class_request)) if class_request else _none(),
            self._attempt(self.lookups.read(Request("list", "pods", namespace))),
            self._attempt(self._events_of("PersistentVolumeClaim", name, namespace)),
        )
        raw = [p for p in (pods or {}).get("items", []) if isinstance(p, dict)]
        facts = claim_facts(claim, storage_class, raw)
        self.found.claim = facts
        mounting = [p for p in raw if p.get("metadata", {}).get("name") in facts.mounted_by]
        self.found.raw_pods = {f.name: p for p in mounting if (f := pod_facts(p))}
        self.found.pods = tuple(sorted((pod_facts(p) for p in mounting), key=pod_badness, reverse=True))
        if facts.nodes:
            await self._all([self._node_of_pod(facts.nodes[0])])

    async def _volume_subject(self) -> None:
        name = self.subject.name
        volume = await self.lookups.read_optional(Request("get", "persistentvolumes", None, name))
        if volume is None:
            self.found.volume = gone_volume(name)
            await self._attempt(self._events_of("PersistentVolume", name, None))
            return
        facts = volume_facts(volume)
        self.found.volume = facts
        steps: list[Awaitable[Any]] = [self._events_of("PersistentVolume", name, None)]
        if facts.claim:
            claim_namespace, claim_name = facts.claim.split("/", 1)
            steps.append(self._bound_claim(claim_namespace, claim_name))
        await self._all(steps)

    async def _bound_claim(self, namespace: str, name: str) -> None:
        claim = await self.lookups.read_optional(Request("get", "persistentvolumeclaims", namespace, name))
        self.found.claim = gone_claim(namespace, name) if claim is None else claim_facts(claim, None, ())

    async def _hpa_subject(self) -> None:
        namespace, name = self._namespace(), self.subject.name
        hpa = await self.lookups.read_optional(Request("get", "horizontalpodautoscalers", namespace, name))
        if hpa is None:
            self.found.hpa = gone_hpa(namespace, name)
            await self._attempt(self._events_of("HorizontalPodAutoscaler", name, namespace))
            return
        facts = hpa_facts(hpa)
        self.found.hpa = facts
        steps: list[Awaitable[Any]] = [self._events_of("HorizontalPodAutoscaler", name, namespace)]
        if facts.target is not None and facts.target.kind in WORKLOADS:
            steps.append(self._scale_target(facts.target))
        await self._all(steps)

    async def _scale_target(self, target: OwnerRef) -> None:
        resource, kind = WORKLOADS[target.kind]
        obj = await self.lookups.read_optional(Request("get", resource, self._namespace(), target.name))
        self.found.workload = (
            workload_facts(kind, obj) if obj is not None else gone_workload(kind, self._namespace(), target.name)
        )

    def _filesystem(self) -> dict[str, str] | None:
        """For node-exporter's filesystem series: which mount of which node."""
        labels = self.alert.labels
        found = {key: value for key in FILESYSTEM_LABELS if (value := label_value(labels, key))}
        if self.subject.kind != "Node" or "mountpoint" not in found:
            return None
        return {"node": self.subject.name, **found}

    async def _service_subject(self) -> None:
        namespace, name = self._namespace(), self.subject.name
        service = await self.lookups.read_optional(Request("get", "services", namespace, name))
        if service is None:
            self.found.service = gone_service(namespace, name)
            return
        slices_request = Request(
            "list",
            "endpointslices",
            namespace,
            params=(("label_selector", f"kubernetes.io/service-name={name}"),),
        )
        selector = label_selector(service.get("spec", {}).get("selector"))
        slices, _ = await eager.gather(
            self._attempt(self.lookups.read(slices_request)),
            self._attempt(self._pods_selected(selector)),
        )
        items = slices.get("items") if isinstance(slices, dict) else None
        self.found.service = service_facts(service, items)
        await self._closer_look_at_worst()

    async def _node_subject(self) -> None:
        name = self.subject.name
        node = await self.lookups.read_optional(Request("get", "nodes", None, name))
        if node is None:
            self.found.node = gone_node(name)
            await self._attempt(self._events_of("Node", name, None))
            return
        self.found.node = node_facts(node)
        on_node = Request("list", "pods", None, params=(("field_selector", f"spec.nodeName={name}"),))
        _, pods = await eager.gather(
            self._attempt(self._events_of("Node", name, None)), self._attempt(self._pods_from(on_node))
        )
        if pods is not None:
            self.found.node = replace(self.found.node, requested=requested_on_node(pods))

    # ---- steps ---------------------------------------------------------------------------

    async def _pod_closer_look(
        self, pod: Json, container: str | None, *, follow_owners: bool, claims: bool = False
    ) -> None:
        details = pod_facts(pod)
        self.found.pod = details
        steps: list[Awaitable[Any]] = [
            self._events_of("Pod", details.name, details.namespace),
            self._logs(details, container),
        ]
        if details.node:
            steps.append(self._node_of_pod(details.node))
        if follow_owners:
            steps.append(self._owner_chain(pod))
        if claims and _may_wait_for_claims(details, pod):
            steps.append(self._claims_waited_for(pod))
        await self._all(steps)
        workload, unbound = self.found.workload, self.found.unbound_claims
        if unbound and workload is not None and workload.exists:
            self.found.workload = replace(workload, unbound_claims=unbound)

    async def _claims_waited_for(self, pod: Json) -> None:
        """Which claims of a pod not yet running are not bound, and why: a claim's own events
        say (ProvisioningFailed: its StorageClass does not exist). The claim facts are the
        first unbound one's; the events at most MAX_PENDING_POD_EVENTS claims'."""
        namespace = self._namespace()
        await self._once(("claims", namespace), lambda step: step._claims_listed())
        listed = self.found.claims
        if listed is None:
            return  # the list failed, and says so among the failures
        unbound = tuple(n for n in claims_of_pod(pod) if not claim_bound(listed.by_name.get(n)))
        if not unbound:
            return
        self.found.unbound_claims = unbound
        first = listed.by_name.get(unbound[0])
        self.found.claim = gone_claim(namespace, unbound[0]) if first is None else claim_facts(first, None, ())
        await self._all(
            [self._events_of("PersistentVolumeClaim", c, namespace) for c in unbound[:MAX_PENDING_POD_EVENTS]]
        )

    async def _claims_listed(self) -> None:
        claims: dict[str, Json] = {}
        await self._claims_into(claims)  # the same read as a workload's, shared with it
        self.found.claims = _Claims(claims)

    async def _closer_look_at_worst(self) -> None:
        worst = self.found.pods[0] if self.found.pods else None
        raw = self.found.raw_pods.get(worst.name) if worst else None
        if raw is not None:
            await self._pod_closer_look(raw, None, follow_owners=False)

    async def _pods_selected(self, selector: str | None) -> None:
        if selector is None:
            return  # an empty selector would select every pod in the namespace
        request = Request("list", "pods", self._namespace(), params=(("label_selector", selector),))
        await self._pods_from(request)

    async def _pods_from(self, request: Request) -> Sequence[Json]:
        listing = await self.lookups.read(request)
        raw = [p for p in listing["items"] if isinstance(p, dict)]
        shaped = [(pod_facts(p), p) for p in raw]
        self.found.raw_pods = {facts.name: p for facts, p in shaped}
        self.found.pods = tuple(sorted((f for f, _ in shaped), key=pod_badness, reverse=True))
        return raw

    async def _owner_chain(self, obj: Json) -> None:
        owner = controller_of(obj)
        if owner is None:
            return
        # The pods of one workload share it: read and shaped once per batch.
        key = ("owners", self._namespace(), owner.kind, owner.name)
        await self._once(key, lambda step: step._owners_from(obj))

    async def _owners_from(self, obj: Json) -> None:
        """Pod -> ReplicaSet -> Deployment, or -> StatefulSet/DaemonSet/Job -> CronJob."""
        namespace = self._namespace()
        owner = controller_of(obj)
        for _ in range(MAX_OWNER_DEPTH):
            if owner is None:
                break
            self.found.owners.append(owner)
            resource = OWNER_RESOURCES.get(owner.kind)
            if resource is None:
                break  # a custom controller: named, not followed
            request = Request("get", resource, namespace, owner.name)
            owned = await self.lookups.read_optional(request)
            if owned is None:
                self.found.owners[-1] = replace(owner, exists=False)
                break
            self.found.workload = workload_facts(owner.kind, owned)
            if owner.kind == "Job":
                self.found.job = job_facts(owned)
            if owner.kind == "CronJob":
                self.found.cronjob = cronjob_facts(owned, self.found.job)
            if owner.kind == "Deployment":
                await self._all([self._rollout(owned)])
            owner, obj = controller_of(owned), owned
        await self._all([self._events_of(o.kind, o.name, namespace) for o in self.found.owners])

    async def _rollout(self, deployment: Json) -> None:
        selector = _selector_of(deployment)
        if selector is None:
            return
        request = Request("list", "replicasets", self._namespace(), params=(("label_selector", selector),))
        listing = await self.lookups.read(request)
        self.found.rollout = newest_rollout(deployment, listing["items"])

    async def _node_of_pod(self, name: str) -> None:
        await self._once(("node", name), lambda step: step._node_named(name))

    async def _node_named(self, name: str) -> None:
        node, _ = await eager.gather(
            self.lookups.read_optional(Request("get", "nodes", None, name)),
            self._attempt(self._events_of("Node", name, None)),
        )
        self.found.node = node_facts(node) if node is not None else gone_node(name)

    async def _events_of(self, kind: str, name: str, namespace: str | None) -> None:
        # Node events live in whichever namespace the reporter chose: ask cluster-wide.
        selector = f"involvedObject.kind={kind},involvedObject.name={name},type=Warning"
        request = Request("list", "events", namespace, params=(("field_selector", selector),))
        listing = await self.lookups.read(request)
        self.found.events += [e for e in listing["items"] if isinstance(e, dict)]

    async def _logs(self, pod: PodFacts, container_name: str | None) -> None:
        container = pod.container(container_name)
        if container is None:
            return
        wanted = _logs_wanted(container)
        excerpts = await eager.gather(*(self._log(pod, container.name, previous) for previous in wanted))
        self.found.logs += [e for e in excerpts if e is not None]

    async def _log(self, pod: PodFacts, container: str, previous: bool) -> LogExcerpt | None:
        params: tuple[tuple[str, str | int | bool], ...] = (
            ("container", container),
            ("tail_lines", self.settings.log_lines),
            # Bytes on the wire, before cleaning; the excerpt is cut again after.
            ("limit_bytes", self.settings.max_log_chars * 4),
        )
        if previous:
            params += (("previous", True),)
        request = Request("get", "pods/log", pod.namespace, pod.name, params)
        try:
            text = await self.lookups.read(request)
        except NotFound:
            return None
        except LookupFailed as exc:
            if exc.status == 400:  # "container is waiting to start": no log, not a failure
                return None
            raise
        return log_excerpt(
            str(text),
            container=container,
            previous=previous,
            max_lines=self.settings.log_lines,
            max_chars=self.settings.max_log_chars,
        )

    # ---- plumbing ------------------------------------------------------------------------

    def _namespace(self) -> str:
        assert self.subject.namespace is not None  # resolve_subject guarantees it
        return self.subject.namespace

    async def _attempt(self, step: Awaitable[T]) -> T | None:
        """Run one secondary step; a failure is recorded, not raised."""
        try:
            return await step
        except LookupFailed as exc:
            self.found.failures.append(_failure_text(exc))
            log.info("kubernetes_lookup_failed", request=exc.request.describe(), reason=exc.reason)
            return None

    async def _all(self, steps: Sequence[Awaitable[Any]]) -> None:
        await eager.gather(*(self._attempt(step) for step in steps))

    async def _once(self, key: tuple[str, ...], step: Callable[[_Investigation], Coroutine[Any, Any, None]]) -> None:
        """`step` taken once per batch under `key`, on an investigation of its own, and its
        findings (failures too) added to this one's: the other alerts of the batch that take
        the same step reuse them."""
        found = self._shared.get(key)
        if found is None:
            found = self._shared[key] = eager.future(self._part(step))
        self.found.take(await asyncio.shield(found) if not found.done() else found.result())

    async def _part(self, step: Callable[[_Investigation], Coroutine[Any, Any, None]]) -> _Gathered:
        part = _Investigation(self.lookups, self.settings, self.subject, self.alert, self.now, self._shared)
        await part._attempt(step(part))
        return part.found


_GATHERED_FIELDS = tuple(f.name for f in fields(_Gathered))


async def _none() -> None:
    return None


def _logs_wanted(container: ContainerFacts) -> list[bool]:
    """Which logs (previous?) say something about a container: none for a healthy one."""
    if container.ready and container.state == "running" and not container.has_previous_instance:
        return []
    wanted: list[bool] = []
    if container.state in ("running", "terminated"):
        wanted.append(False)
    if container.has_previous_instance:
        wanted.append(True)
    return wanted


def _may_wait_for_claims(pod: PodFacts, raw: Json) -> bool:
    """A pod not yet running may wait for a claim to bind; a running pod's claims are bound,
    and a healthy pod's alert reads nothing more."""
    not_started = pod.phase == "Pending" or pod.unschedulable is not None
    return not pod.ready and not_started and bool(claims_of_pod(raw))


def _failure_text(exc: LookupFailed) -> str:
    # A forbidden reason already names the verb and resource it lacks.
    if exc.status == 403:
        return exc.reason
    return f"{exc.request.describe()}: {exc.reason}"


def _selector_of(obj: Json) -> str | None:
    spec = obj.get("spec")
    return label_selector(spec.get("selector")) if isinstance(spec, dict) else None


# ---- connection ------------------------------------------------------------------------------


async def connect_kubernetes(
    mode: str,
    kubeconfig: str | None,
    host: str | None,
    token: str | None = None,
    *,
    token_file: str | None = None,
    settings: KubernetesSettings = KubernetesSettings(),
    clock: Callable[[], float] = time.monotonic,
) -> KubernetesEnricher | None:
    """The enricher with one shared ApiClient, or None when Kubernetes is off.

    mode "auto": in-cluster service account, else the kubeconfig file, else off.
    mode "incluster" / "kubeconfig": only that, failing loudly. mode "off": None.
    An explicit `host` (tests, or an API proxy) takes the place of in-cluster and
    kubeconfig discovery, over plain HTTP if the URL says so, with `token` (or the
    contents of `token_file`) sent as a bearer token.
    """
    if mode == "off":
        return None
    configuration = client.Configuration()
    if host:
        configuration = client.Configuration(host=host)
        bearer = token or (_read_token(token_file) if token_file else None)
        if bearer:
            configuration.api_key = {"BearerToken": bearer}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
    elif not await _load_configuration(mode, kubeconfig, configuration):
        return None
    _proxy_from_environment(configuration)
    log.info("kubernetes_connected", host=configuration.host, mode=mode)
    api_client = client.ApiClient(configuration)
    await _stop_asking_the_environment(api_client)
    return KubernetesEnricher(api_client, settings, clock=clock)


def _proxy_from_environment(configuration: client.Configuration) -> None:
    """HTTPS_PROXY (or HTTP_PROXY) and NO_PROXY for the API server, read once at start; a
    kubeconfig's `proxy-url` comes first. aiohttp sends the proxy URL's own credentials
    as Proxy-Authorization."""
    if configuration.proxy:
        return
    target = urlsplit(str(configuration.host))
    if target.hostname and not proxy_bypass(target.hostname):
        configuration.proxy = getproxies().get(target.scheme)


# kubernetes-asyncio's own read buffer (rest.py): watch events of large objects exceed aiohttp's default.
LIBRARY_READ_BUFSIZE = 2**21


async def _stop_asking_the_environment(api_client: client.ApiClient) -> None:
    """kubernetes-asyncio's session trusts the environment, so aiohttp looks up `.netrc`
    and the proxy variables on every request, each time in a worker thread, while the
    request holds one of the API slots (kubernetes.max_log_reads for a log): in a storm that
    made each log read hold its slot a third longer. The proxy is read once instead
    (`_proxy_from_environment`); `.netrc` never applied, as every request carries its
    own credentials. Same connection pool, same read buffer as the library's session."""
    rest: Any = getattr(api_client, "rest_client", None)
    trusting = getattr(rest, "pool_manager", None)
    if not isinstance(trusting, aiohttp.ClientSession):  # another library version: its own session stays
        return
    connector = trusting.connector
    trusting.detach()  # the pool moves to the new session; the old one closes empty
    await trusting.close()
    rest.pool_manager = aiohttp.ClientSession(connector=connector, trust_env=False, read_bufsize=LIBRARY_READ_BUFSIZE)


async def _load_configuration(mode: str, kubeconfig: str | None, configuration: client.Configuration) -> bool:
    if mode not in ("auto", "incluster", "kubeconfig"):
        raise ValueError(f"kubernetes.mode must be auto, incluster, kubeconfig or off: {mode!r}")
    if mode in ("auto", "incluster"):
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return True
        except config.ConfigException:
            if mode == "incluster":
                raise
    path = _kubeconfig_path(kubeconfig)
    if mode == "auto" and not _is_file(path):
        log.info("kubernetes_off", reason="not in a cluster and no kubeconfig", kubeconfig=path)
        return False
    await config.load_kube_config(config_file=path, client_configuration=configuration, persist_config=False)
    return True


def _kubeconfig_path(kubeconfig: str | None) -> str:
    return kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


def _read_token(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()  # at start-up only


def _is_file(path: str) -> bool:
    return Path(path).expanduser().is_file()  # once, at start-up: blocking is harmless


# ---- dependency edges for the RCA graph ----------------------------------------------------------


def workload_of_pod(pod: Json) -> str:
    """The workload a pod belongs to: Deployment (via its ReplicaSet), StatefulSet, ..."""
    owner = controller_of(pod)
    if owner is None:
        return str(pod.get("metadata", {}).get("name", "?"))
    labels = pod.get("metadata", {}).get("labels") or {}
    template_hash = labels.get("pod-template-hash")
    if owner.kind == "ReplicaSet" and template_hash and owner.name.endswith(f"-{template_hash}"):
        return owner.name.removesuffix(f"-{template_hash}")
    return owner.name


def kubernetes_edges(endpoint_slices: Sequence[Json], pods: Sequence[Json]) -> tuple[Edge, ...]:
    """Service -> workload (from EndpointSlice targets) and workload -> node (pods on nodes).

    Pure: pass the `items` of an EndpointSliceList and a PodList.
    """
    by_pod = {
        (str(p["metadata"].get("namespace")), str(p["metadata"].get("name"))): p
        for p in pods
        if isinstance(p.get("metadata"), dict)
    }
    edges: dict[tuple[str, str], Edge] = {}
    for endpoint_slice in endpoint_slices:
        metadata = endpoint_slice.get("metadata") or {}
        service = (metadata.get("labels") or {}).get("kubernetes.io/service-name")
        for endpoint in endpoint_slice.get("endpoints") or []:
            target = endpoint.get("targetRef") or {}
            pod = by_pod.get((str(target.get("namespace")), str(target.get("name"))))
            if service and target.get("kind") == "Pod" and pod is not None:
                workload = workload_of_pod(pod)
                edges[(service, workload)] = Edge(service, workload, "kubernetes")
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            workload = workload_of_pod(pod)
            edges[(workload, node)] = Edge(workload, node, "kubernetes")
    return tuple(edges.values())
