"""Reads from the Kubernetes API: one shared client, a concurrency limit, a timeout per call,
every failure classified, and identical requests of one alert group shared.

Responses are read as plain JSON (`_preload_content=False`) rather than deserialised into
kubernetes-asyncio's models: the models reject objects with missing fields, and the fact
shaping in k8s_facts works on the same dicts the fixtures and the API serve.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from kubernetes_asyncio import client

CACHE_PREFIX = "kubernetes:"
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# Every resource the enricher reads, with its API group ("" is core): manifests/rbac.yaml
# grants get/list/watch on each and nothing more (checked by tests/test_deploy_manifests.py).
RESOURCE_GROUPS: dict[str, str] = {
    **dict.fromkeys(
        ("pods", "pods/log", "events", "nodes", "services", "persistentvolumeclaims", "persistentvolumes"), ""
    ),
    **dict.fromkeys(("deployments", "replicasets", "statefulsets", "daemonsets"), "apps"),
    **dict.fromkeys(("jobs", "cronjobs"), "batch"),
    "endpointslices": "discovery.k8s.io",
    "horizontalpodautoscalers": "autoscaling",
    "storageclasses": "storage.k8s.io",
}


class LookupFailed(Exception):
    """A lookup that did not produce an answer; `reason` is short and safe to show."""

    def __init__(self, request: Request, reason: str, status: int | None = None) -> None:
        super().__init__(f"{request.describe()}: {reason}")
        self.request = request
        self.reason = reason
        self.status = status


class NotFound(LookupFailed):
    """The object does not exist (any more): a fact about the cluster, not a failure."""


@dataclass(frozen=True)
class Request:
    """One read: `verb` and `resource` are RBAC's words, so a 403 can name what is missing."""

    verb: str  # get | list
    resource: str  # pods, pods/log, events, deployments, ...
    namespace: str | None = None
    name: str | None = None
    params: tuple[tuple[str, str | int | bool], ...] = ()

    @property
    def key(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"{CACHE_PREFIX}{self.verb} {self.resource} {self.namespace}/{self.name}?{query}"

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.verb} {self.resource}{where}"


def forbidden_reason(request: Request) -> str:
    return f"forbidden (RBAC): needs {request.verb} on {request.resource}" + (
        f" in namespace {request.namespace}" if request.namespace else " (cluster-wide)"
    )


MISS: Any = object()  # a cache cannot answer: read directly


class Reader(Protocol):
    """Where the enricher's reads go: the API directly (KubeApi), or the watch cache in
    front of it (reads.CachedReader). The fact code sees the same JSON either way."""

    call_timeout_seconds: float

    async def fetch(self, request: Request, seconds_allowed: float) -> Any: ...


class RequestObserver(Protocol):
    def request(self, verb: str, resource: str, code: str) -> None: ...


class _Unobserved:
    def request(self, verb: str, resource: str, code: str) -> None:
        pass


class KubeApi:
    """The process-wide connection. Close it with `close()`."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        call_timeout_seconds: float,
        max_concurrency: int,
        max_log_reads: int,
    ) -> None:
        self._api_client = api_client
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._discovery = client.DiscoveryV1Api(api_client)
        self._autoscaling = client.AutoscalingV2Api(api_client)
        self._storage = client.StorageV1Api(api_client)
        self.call_timeout_seconds = call_timeout_seconds
        self._limit = asyncio.Semaphore(max_concurrency)
        # Log reads have slots of their own: the API server counts them as long-running
        # requests (like watches), outside its in-flight limits, and hands each to the
        # pod's kubelet; a storm's log reads must not starve the reads that use its seats.
        self._log_limit = asyncio.Semaphore(max_log_reads)
        self.observer: RequestObserver = _Unobserved()

    async def close(self) -> None:
        await self._api_client.close()

    def _operation(self, request: Request) -> Callable[..., Awaitable[Any]]:
        operations: dict[tuple[str, str, bool], Callable[..., Awaitable[Any]]] = {
            ("get", "pods", True): self._core.read_namespaced_pod,
            ("get", "pods/log", True): self._core.read_namespaced_pod_log,
            ("list", "pods", True): self._core.list_namespaced_pod,
            ("list", "pods", False): self._core.list_pod_for_all_namespaces,
            ("list", "events", True): self._core.list_namespaced_event,
            ("list", "events", False): self._core.list_event_for_all_namespaces,
            ("get", "nodes", False): self._core.read_node,
            ("get", "persistentvolumeclaims", True): self._core.read_namespaced_persistent_volume_claim,
            ("list", "persistentvolumeclaims", True): self._core.list_namespaced_persistent_volume_claim,
            ("get", "persistentvolumes", False): self._core.read_persistent_volume,
            ("get", "storageclasses", False): self._storage.read_storage_class,
            ("get", "horizontalpodautoscalers", True): self._autoscaling.read_namespaced_horizontal_pod_autoscaler,
            ("get", "services", True): self._core.read_namespaced_service,
            ("list", "endpointslices", True): self._discovery.list_namespaced_endpoint_slice,
            ("list", "endpointslices", False): self._discovery.list_endpoint_slice_for_all_namespaces,
            ("get", "deployments", True): self._apps.read_namespaced_deployment,
            ("get", "statefulsets", True): self._apps.read_namespaced_stateful_set,
            ("get", "daemonsets", True): self._apps.read_namespaced_daemon_set,
            ("get", "replicasets", True): self._apps.read_namespaced_replica_set,
            ("list", "replicasets", True): self._apps.list_namespaced_replica_set,
            ("get", "jobs", True): self._batch.read_namespaced_job,
            ("list", "jobs", True): self._batch.list_namespaced_job,
            ("get", "cronjobs", True): self._batch.read_namespaced_cron_job,
        }
        return operations[(request.verb, request.resource, request.namespace is not None)]

    async def fetch(self, request: Request, seconds_allowed: float) -> Any:
        """The decoded JSON object (or text, for logs). Raises LookupFailed, never others."""
        if seconds_allowed <= 0:
            raise LookupFailed(request, "no time left in the enrichment budget")
        args: list[str] = [a for a in (request.name, request.namespace) if a is not None]
        code = "error"
        try:
            # The wait for a free slot counts against the call's time: the budget is wall time.
            slots = self._log_limit if request.resource == "pods/log" else self._limit
            async with asyncio.timeout(seconds_allowed), slots:
                response = await self._operation(request)(*args, **dict(request.params), _preload_content=False)
                async with response:
                    body = await read_bounded(response, MAX_RESPONSE_BYTES)
                    status = response.status
                    code = str(status)
        except TimeoutError:
            code = "timeout"
            raise LookupFailed(request, f"timed out after {seconds_allowed:.3g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise LookupFailed(request, f"connection failed: {type(exc).__name__}") from None
        except client.ApiException as exc:  # raised for request-side problems
            code = str(exc.status)
            raise LookupFailed(request, f"API error {exc.status}", exc.status) from None
        finally:
            self.observer.request(request.verb, request.resource, code)
        return _decode(request, status, body)


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, cut at `limit` bytes: a runaway response must not exhaust memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _decode(request: Request, status: int, body: bytes) -> Any:
    if status == 404:
        raise NotFound(request, "not found", status)
    if status == 403:
        raise LookupFailed(request, forbidden_reason(request), status)
    if status == 401:
        raise LookupFailed(request, "unauthorized (credentials rejected)", status)
    if not 200 <= status < 300:
        raise LookupFailed(request, f"HTTP {status}: {_status_message(body)}", status)
    if request.resource == "pods/log":
        return body.decode("utf-8", errors="replace")
    try:
        decoded = json.loads(body)
    except ValueError:
        raise LookupFailed(request, "bad response (not JSON)", status) from None
    if not isinstance(decoded, dict):
        raise LookupFailed(request, "bad response (not a JSON object)", status)
    if request.verb == "list" and not isinstance(decoded.get("items"), list):
        raise LookupFailed(request, "bad response (a list without items)", status)
    return decoded


def _status_message(body: bytes) -> str:
    """The `message` of a Kubernetes Status body, else a short prefix of the body."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return str(decoded["message"])[:200]
    return body[:100].decode("utf-8", errors="replace")


class Lookups:
    """The reads of one enrichment, on a deadline, sharing the alert group's cache.

    Identical requests of several alerts of a group share one asyncio Task (stored in
    `cache` under the request's key); each caller awaits it through `shield`, so one
    alert running out of time does not cancel the read another alert is waiting for.
    """

    def __init__(
        self,
        api: Reader,
        cache: dict[str, Any],
        deadline: float,
        answer_now: Callable[[Request], Any] | None = None,
    ) -> None:
        self._api = api
        self._cache = cache
        self._deadline = deadline
        # From a synced watch cache: the answer at once, or `miss` (then `api` reads it).
        self._answer_now = answer_now

    def _time_left(self) -> float:
        remaining = self._deadline - asyncio.get_running_loop().time()
        return min(self._api.call_timeout_seconds, remaining)

    async def read(self, request: Request) -> Any:
        if self._answer_now is not None:
            # A storm's reads are mostly these: the watch cache's answer, no Task, no wait.
            answer = self._answer_now(request)  # raises NotFound, an answer too
            if answer is not MISS:
                return answer
        key = request.key
        task = self._cache.get(key)
        if not isinstance(task, asyncio.Future):
            task = asyncio.ensure_future(self._api.fetch(request, self._time_left()))
            task.add_done_callback(_consume_exception)
            self._cache[key] = task
        return await asyncio.shield(task)

    async def read_optional(self, request: Request) -> Any | None:
        """Like `read`, but a missing object is None."""
        try:
            return await self.read(request)
        except NotFound:
            return None


def _consume_exception(task: asyncio.Future[Any]) -> None:
    # Failures reach every awaiting caller; this only keeps asyncio from logging a
    # shared read nobody awaited any more as "exception was never retrieved".
    if not task.cancelled():
        task.exception()
