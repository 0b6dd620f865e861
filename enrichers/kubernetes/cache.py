"""A watch-based cache of the objects KubeBot reads: list once, then watch, as client-go's
informers do, so that a storm of alerts reads memory instead of the API server.

One `Informer` per resource (cluster-wide; per namespace where RBAC allows only that):
a paged list gives the objects and the resourceVersion to watch from; the watch
(kubernetes-asyncio's own, with allowWatchBookmarks and a server-side timeoutSeconds)
applies ADDED/MODIFIED/DELETED and moves the version on with every event and BOOKMARK.
A stream that ends is resumed from the last version; `410 Gone` means a relist; a failed
connection is retried with backoff. Objects are trimmed (trim.py) and indexed by
namespace, label, owner, node and involved object, so lists are answered from indexes.

An informer answers only while it is fresh: listed, and its watch connected or lost for
less than `stale_after_seconds`. Otherwise the caller reads the API directly. Where watch
is forbidden (403) or not served (404/405), or streams keep closing at once, the resource
falls back to direct reads: logged once as `kubernetes_watch_unavailable`, watch_up 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import structlog
from kubernetes_asyncio import client, watch

from enrichers.kubernetes import selectors
from enrichers.kubernetes.api import MISS, NotFound, Request, read_bounded
from enrichers.kubernetes.trim import trim

log = structlog.get_logger("kubebot.kubernetes")
Json = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
ListFunction = Callable[..., Awaitable[Any]]
MAX_LIST_PAGE_BYTES = 64 * 1024 * 1024
UNSERVED = frozenset({403, 404, 405})


class Observer(Protocol):
    """Where the cache reports its health (receiver.metrics implements it)."""

    def request(self, verb: str, resource: str, code: str) -> None: ...

    def cache_objects(self, resource: str, count: int) -> None: ...

    def watch_restart(self, resource: str) -> None: ...

    def watch_up(self, resource: str, up: bool) -> None: ...


class NoObserver:
    def request(self, verb: str, resource: str, code: str) -> None:
        pass

    def cache_objects(self, resource: str, count: int) -> None:
        pass

    def watch_restart(self, resource: str) -> None:
        pass

    def watch_up(self, resource: str, up: bool) -> None:
        pass


@dataclass(frozen=True)
class WatchSettings:
    timeout_seconds: int = 300  # server-side end of one watch request; then resumed
    page_size: int = 500
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    max_failures: int = 5  # consecutive failed or at-once-closed streams before falling back
    quick_close_seconds: float = 1.0  # a stream ending sooner, with nothing on it, is a failure
    stale_after_seconds: float = 5.0  # a lost watch is trusted this long while it reconnects


# ---- indexes ---------------------------------------------------------------------------------


def _namespace_of(obj: Json) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _labels_of(obj: Json) -> Iterable[str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (f"{k}={v}" for k, v in labels.items()) if isinstance(labels, dict) else ()


def _owners_of(obj: Json) -> Iterable[str]:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return (f"{o.get('kind')}/{o.get('name')}" for o in owners if isinstance(o, dict))


def _node_of(obj: Json) -> Iterable[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return (str(node),) if node else ()


def _involved_of(obj: Json) -> Iterable[str]:
    involved = obj.get("involvedObject") or {}
    return (f"{involved.get('kind')}/{involved.get('name')}",) if isinstance(involved, dict) else ()


INDEXES: dict[str, Callable[[Json], Iterable[str]]] = {
    "namespace": lambda obj: (_namespace_of(obj),),
    "label": _labels_of,
    "owner": _owners_of,
    "node": _node_of,
    "involved": _involved_of,
}


class Store:
    """Trimmed objects by (namespace, name), with the indexes lookups use instead of scans."""

    def __init__(self) -> None:
        self.objects: dict[Key, Json] = {}
        self._index: dict[str, dict[str, set[Key]]] = {name: {} for name in INDEXES}
        self.taken_in = 0  # objects stored so far, by lists and watch events

    def __len__(self) -> int:
        return len(self.objects)

    def replace(self, objects: Iterable[Json]) -> None:
        self.objects.clear()
        for index in self._index.values():
            index.clear()
        for obj in objects:
            self.put(obj)

    def put(self, obj: Json) -> None:
        key = _key(obj)
        self.delete(key)
        self.objects[key] = obj
        self.taken_in += 1
        for name, values_of in INDEXES.items():
            for value in values_of(obj):
                self._index[name].setdefault(value, set()).add(key)

    def delete(self, key: Key) -> None:
        old = self.objects.pop(key, None)
        if old is None:
            return
        for name, values_of in INDEXES.items():
            index = self._index[name]
            for value in values_of(old):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    def get(self, namespace: str | None, name: str) -> Json | None:
        return self.objects.get((namespace or "", name))

    def indexed(self, index: str, value: str) -> list[Json]:
        """Objects by one index, e.g. ("owner", "ReplicaSet/web-5d4f"), ("node", "worker-1")."""
        return [self.objects[k] for k in sorted(self._index[index].get(value, ()))]

    def select(self, namespace: str | None, label_selector: str, field_selector: str) -> list[Json]:
        """Objects matching both selectors, narrowed through the indexes first."""
        candidates: list[set[Key]] = []
        if namespace is not None:
            candidates.append(self._index["namespace"].get(namespace, set()))
        labels = selectors.parse(label_selector)
        candidates += [self._index["label"].get(f"{k}={v}", set()) for k, v in selectors.equalities(labels).items()]
        field_requirements = selectors.parse(field_selector)
        fields = selectors.equalities(field_requirements)
        if "spec.nodeName" in fields:
            candidates.append(self._index["node"].get(fields["spec.nodeName"], set()))
        if "involvedObject.name" in fields:
            involved = f"{fields.get('involvedObject.kind')}/{fields['involvedObject.name']}"
            candidates.append(self._index["involved"].get(involved, set()))
        keys: Iterable[Key] = set.intersection(*sorted(candidates, key=len)) if candidates else self.objects.keys()
        if not keys:  # the usual answer for a storm's events reads
            return []
        match_labels = selectors.labels_match(labels)
        match_fields = selectors.fields_match(field_requirements)
        found = []
        for key in sorted(keys):
            obj = self.objects[key]
            if match_labels((obj.get("metadata") or {}).get("labels") or {}) and match_fields(obj):
                found.append(obj)
        return found


def _key(obj: Json) -> Key:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


# ---- one resource, listed and watched -------------------------------------------------------


class _Gone(Exception):
    """410: the version watched from is no longer kept; relist."""


class _Unserved(Exception):
    def __init__(self, status: int, verb: str) -> None:
        super().__init__(status)
        self.status = status
        self.verb = verb


class Informer:
    """The cache of one resource, cluster-wide (`namespace` None) or in one namespace."""

    def __init__(
        self,
        resource: str,
        list_function: ListFunction,
        namespace: str | None,
        *,
        settings: WatchSettings,
        observer: Observer,
        clock: Callable[[], float] = time.monotonic,
        logged: set[str] | None = None,
    ) -> None:
        self.resource = resource
        self._logged = logged if logged is not None else set()  # resources whose fallback was logged
        self.namespace = namespace
        self._list_function = list_function
        self._settings = settings
        self._observer = observer
        self._clock = clock
        self.store = Store()
        self.version: str | None = None
        self.synced = False
        self.watching = False
        self.unavailable: str | None = None  # why it fell back for good (403/404/405)
        self.down = False  # failing streams: direct reads until it recovers
        self.unserved_status: int | None = None
        self.unserved_verb: str | None = None  # list | watch
        self._last_contact = float("-inf")
        self._watched = False  # a watch was established after a list
        self._synced_event = asyncio.Event()

    # ---- answering -------------------------------------------------------------------

    @property
    def fresh(self) -> bool:
        if not self.synced or self.down or self.unavailable:
            return False
        if self.watching:
            return True
        # Between watches (a reconnect, a relist) the last state is trusted for a moment;
        # before the first watch is established it is not: changes since the list are unseen.
        recent = self._clock() - self._last_contact <= self._settings.stale_after_seconds
        return self._watched and recent

    def answer(self, request: Request) -> Any:
        """The object or list `request` asks for, or MISS when this cache cannot tell."""
        if not self.fresh or (self.namespace is not None and request.namespace != self.namespace):
            return MISS
        params = dict(request.params)
        if request.verb == "get" and request.name is not None and not params:
            obj = self.store.get(request.namespace, request.name)
            if obj is None:
                raise NotFound(request, "not found", 404)
            return obj
        if request.verb != "list" or set(params) - {"label_selector", "field_selector"}:
            return MISS
        items = self.store.select(
            request.namespace, str(params.get("label_selector", "")), str(params.get("field_selector", ""))
        )
        return {"metadata": {"resourceVersion": self.version}, "items": items}

    async def wait_synced(self) -> None:
        """Until listed and watching (or fallen back to direct reads)."""
        await self._synced_event.wait()

    # ---- running ---------------------------------------------------------------------

    async def run(self) -> None:
        backoff = self._settings.backoff_initial_seconds
        failures = 0
        while True:
            try:
                if self.version is None:
                    await self._list()
                opened = self._clock()
                received = await self._watch()
                self._observer.watch_restart(self.resource)
                quick = received == 0 and self._clock() - opened < self._settings.quick_close_seconds
                if not quick:
                    failures, backoff = 0, self._settings.backoff_initial_seconds
                    self._set_down(False)
                    continue
                reason = "watch streams close at once"
            except _Gone:
                self.version = None
                self._observer.watch_restart(self.resource)
                continue
            except _Unserved as exc:
                self._fall_back(exc.status, exc.verb)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of the connection or the stream: retried
                self.watching = False
                self._observer.watch_restart(self.resource)
                reason = f"{type(exc).__name__}: {exc}"[:200]
            failures += 1
            if failures >= self._settings.max_failures:
                self._set_down(True, reason)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._settings.backoff_max_seconds)

    async def _list(self) -> None:
        objects: list[Json] = []
        token: str | None = None
        version = ""
        while True:
            page = await self._list_page(token)
            objects += [trim(self.resource, o) for o in page.get("items") or () if isinstance(o, dict)]
            metadata = page.get("metadata") or {}
            version = str(metadata.get("resourceVersion") or version)
            token = metadata.get("continue") or None
            if token is None:
                break
        self.store.replace(objects)
        self.version = version
        self.synced = True
        self._last_contact = self._clock()
        self._observer.cache_objects(self.resource, len(self.store))
        self._observer.watch_up(self.resource, not self.down)

    async def _list_page(self, token: str | None) -> Json:
        kwargs: dict[str, Any] = {"limit": self._settings.page_size, "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        args = (self.namespace,) if self.namespace is not None else ()
        response = await self._list_function(*args, **kwargs, _request_timeout=60)
        async with response:
            status = response.status
            self._observer.request("list", self.resource, str(status))
            body = await read_bounded(response, MAX_LIST_PAGE_BYTES)
        if status == 410:
            raise _Gone
        if status in UNSERVED:
            raise _Unserved(status, "list")
        if not 200 <= status < 300:
            raise RuntimeError(f"list {self.resource}: HTTP {status}")
        decoded = json.loads(body)
        if not isinstance(decoded, dict) or not isinstance(decoded.get("items"), list):
            raise ValueError(f"list {self.resource}: not a list")
        return decoded

    async def _watch(self) -> int:
        """One watch request, until the server ends it; the number of events it carried."""
        timeout = self._settings.timeout_seconds
        args = (self.namespace,) if self.namespace is not None else ()
        stream = watch.Watch(return_type="object")
        received, code = 0, "200"
        try:
            events = stream.stream(
                self._list_function,
                *args,
                resource_version=self.version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout,
                # A dead connection is noticed shortly after the server should have ended it.
                _request_timeout=aiohttp.ClientTimeout(total=timeout + 30, sock_connect=10),
            )
            # Open the stream here rather than on the first event, to know it is established.
            stream.resp = response = await stream.func()
            if response.status != 200:
                raise client.ApiException(status=response.status, reason=await response.text())
            self.watching = self._watched = True
            self._last_contact = self._clock()
            self._synced_event.set()
            async for event in events:
                received += 1
                self._apply(event)
        except client.ApiException as exc:
            code = str(exc.status)
            if exc.status == 410:
                raise _Gone from None
            if exc.status in UNSERVED:
                raise _Unserved(exc.status, "watch") from None
            raise
        except Exception:
            code = "error"
            raise
        finally:
            self.watching = False
            self._last_contact = self._clock()
            self._observer.request("watch", self.resource, code)
            with contextlib.suppress(Exception):
                await stream.close()
        return received

    def _apply(self, event: Json) -> None:
        self._last_contact = self._clock()
        kind = event.get("type")
        obj = event.get("raw_object")
        if not isinstance(obj, dict):
            return
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            self.version = str(version) if version else self.version
            return
        if kind in ("ADDED", "MODIFIED"):
            self.store.put(trim(self.resource, obj))
        elif kind == "DELETED":
            self.store.delete(_key(obj))
        if version:
            self.version = str(version)
        self._observer.cache_objects(self.resource, len(self.store))

    def _log_once(self, reason: str) -> None:
        if self.resource not in self._logged:
            self._logged.add(self.resource)
            log.warning("kubernetes_watch_unavailable", resource=self.resource, namespace=self.namespace, reason=reason)

    def _set_down(self, down: bool, reason: str = "") -> None:
        if down and not self.down:
            self._log_once(reason)
            self._synced_event.set()  # nobody waits for a cache that is not coming
        if down != self.down or not down:
            self._observer.watch_up(self.resource, not down)
        self.down = down

    def _fall_back(self, status: int, verb: str) -> None:
        self.unserved_status = status
        self.unserved_verb = verb
        self.unavailable = {403: "forbidden (RBAC)", 404: "not served", 405: "not served"}[status]
        self.watching = False
        self._synced_event.set()  # nothing to wait for: reads go direct
        self._log_once(f"{verb} {self.unavailable} (HTTP {status}); reading directly")
        self._observer.watch_up(self.resource, False)


# ---- every resource KubeBot reads ---------------------------------------------------------------


def list_functions(api_client: client.ApiClient) -> dict[str, tuple[ListFunction, ListFunction | None]]:
    """resource -> (cluster-wide list, namespaced list or None for a cluster-scoped kind)."""
    core, apps, batch = client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.BatchV1Api(api_client)
    discovery, storage = client.DiscoveryV1Api(api_client), client.StorageV1Api(api_client)
    autoscaling = client.AutoscalingV2Api(api_client)
    return {
        "pods": (core.list_pod_for_all_namespaces, core.list_namespaced_pod),
        "events": (core.list_event_for_all_namespaces, core.list_namespaced_event),
        "nodes": (core.list_node, None),
        "services": (core.list_service_for_all_namespaces, core.list_namespaced_service),
        "persistentvolumeclaims": (
            core.list_persistent_volume_claim_for_all_namespaces,
            core.list_namespaced_persistent_volume_claim,
        ),
        "persistentvolumes": (core.list_persistent_volume, None),
        "deployments": (apps.list_deployment_for_all_namespaces, apps.list_namespaced_deployment),
        "replicasets": (apps.list_replica_set_for_all_namespaces, apps.list_namespaced_replica_set),
        "statefulsets": (apps.list_stateful_set_for_all_namespaces, apps.list_namespaced_stateful_set),
        "daemonsets": (apps.list_daemon_set_for_all_namespaces, apps.list_namespaced_daemon_set),
        "jobs": (batch.list_job_for_all_namespaces, batch.list_namespaced_job),
        "cronjobs": (batch.list_cron_job_for_all_namespaces, batch.list_namespaced_cron_job),
        "endpointslices": (
            discovery.list_endpoint_slice_for_all_namespaces,
            discovery.list_namespaced_endpoint_slice,
        ),
        "horizontalpodautoscalers": (
            autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
            autoscaling.list_namespaced_horizontal_pod_autoscaler,
        ),
        "storageclasses": (storage.list_storage_class, None),
    }


class WatchCache:
    """An informer per resource, cluster-wide; where RBAC forbids the cluster-wide list or
    watch, an informer per namespace, started when an alert first asks about that namespace."""

    def __init__(
        self,
        functions: dict[str, tuple[ListFunction, ListFunction | None]],
        *,
        settings: WatchSettings = WatchSettings(),
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._functions = functions
        self._settings = settings
        self._observer: Observer = observer or NoObserver()
        self._clock = clock
        self.informers: dict[tuple[str, str | None], Informer] = {}
        self._logged: set[str] = set()
        self._tasks: dict[tuple[str, str | None], asyncio.Task[None]] = {}

    def start(self) -> None:
        for resource in self._functions:
            self._spawn(resource, None)

    def _spawn(self, resource: str, namespace: str | None) -> Informer:
        cluster_wide, namespaced = self._functions[resource]
        function = cluster_wide if namespace is None else namespaced
        assert function is not None
        informer = Informer(
            resource,
            function,
            namespace,
            settings=self._settings,
            observer=self._observer,
            clock=self._clock,
            logged=self._logged,
        )
        self.informers[(resource, namespace)] = informer
        task = asyncio.get_running_loop().create_task(informer.run(), name=f"kubernetes-watch-{resource}")
        self._tasks[(resource, namespace)] = task
        return informer

    def informer_for(self, request: Request) -> Informer | None:
        """The informer that may answer `request`; None where the resource is not cached."""
        informer = self.informers.get((request.resource, None))
        if informer is None:
            return None
        # Only a forbidden cluster-wide list is worth trying per namespace (a namespaced Role).
        if (informer.unserved_status, informer.unserved_verb) != (403, "list") or request.namespace is None:
            return informer
        if self._functions[request.resource][1] is None:
            return None
        scoped = self.informers.get((request.resource, request.namespace))
        return scoped if scoped is not None else self._spawn(request.resource, request.namespace)

    async def wait_synced(self) -> None:
        """Until every cluster-wide informer has listed (or fallen back)."""
        await asyncio.gather(*(i.wait_synced() for (_, ns), i in list(self.informers.items()) if ns is None))

    def objects(self) -> int:
        return sum(len(i.store) for i in self.informers.values())

    def taken_in(self) -> int:
        """Objects stored since the start (lists and watch events): how much of the cache is new."""
        return sum(i.store.taken_in for i in self.informers.values())

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
