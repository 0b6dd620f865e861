"""A fake Kubernetes API server: a real aiohttp server on 127.0.0.1 that answers the real
REST paths with real object JSON from ../shared/fixtures/kubernetes.

It understands what the enricher asks: GET of one object, lists with labelSelector and
fieldSelector (pods, events, nodes, services, endpointslices, the apps/v1 and batch/v1
workloads, persistentvolumeclaims, persistentvolumes, storageclasses, autoscaling/v2
horizontalpodautoscalers), `pods/{name}/log` with container, previous, tailLines and limitBytes. It
counts requests, records the Authorization header, and can be told to hang, answer 403 or
404, or send garbage for one resource.

It also watches as the API server does: every change (`add`, `modify`, `remove`) takes the
next value of one global resourceVersion counter; a list answers with the current one and
pages with `limit`/`continue`; `?watch=true` streams chunked JSON lines of ADDED, MODIFIED,
DELETED and (with allowWatchBookmarks) BOOKMARK events from a resourceVersion on, ends
after `timeoutSeconds`, and answers a version older than its kept history with an ERROR
event carrying a 410 Status. Watch can be forbidden per resource, streams can be cut every
few seconds (a proxy) or all at once (the server going away).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import copy
import json
import re
import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

# tests/fakes/kube_api.py -> parents[3] is the directory holding the checkout and shared/.
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "kubernetes"

Fault = Literal["hang", "forbidden", "not_found", "garbage"]
Obj = dict[str, Any]

LIST_KINDS = {
    "pods": "PodList",
    "events": "EventList",
    "nodes": "NodeList",
    "services": "ServiceList",
    "endpointslices": "EndpointSliceList",
    "deployments": "DeploymentList",
    "replicasets": "ReplicaSetList",
    "statefulsets": "StatefulSetList",
    "daemonsets": "DaemonSetList",
    "jobs": "JobList",
    "cronjobs": "CronJobList",
    "persistentvolumeclaims": "PersistentVolumeClaimList",
    "persistentvolumes": "PersistentVolumeList",
    "storageclasses": "StorageClassList",
    "horizontalpodautoscalers": "HorizontalPodAutoscalerList",
}
# The apiVersion a List of each resource carries (core/v1 unless named here).
LIST_API_VERSIONS = {
    **dict.fromkeys(("deployments", "replicasets", "statefulsets", "daemonsets"), "apps/v1"),
    **dict.fromkeys(("jobs", "cronjobs"), "batch/v1"),
    "endpointslices": "discovery.k8s.io/v1",
    "storageclasses": "storage.k8s.io/v1",
    "horizontalpodautoscalers": "autoscaling/v2",
}
RESOURCE_OF_KIND = {kind.removesuffix("List"): plural for plural, kind in LIST_KINDS.items()}


def load_fixture(filename: str) -> Any:
    text = (FIXTURES / filename).read_text(encoding="utf-8")
    return json.loads(text)


def items_of(filename: str) -> list[Obj]:
    """The objects in a fixture: a List's items, or the one object."""
    loaded = load_fixture(filename)
    return list(loaded["items"]) if "items" in loaded else [loaded]


def rehome(obj: Obj, namespace: str) -> Obj:
    """A copy of an object (and, for an event, its involvedObject) in another namespace."""
    moved = copy.deepcopy(obj)
    moved["metadata"]["namespace"] = namespace
    if "involvedObject" in moved and moved["involvedObject"].get("namespace"):
        moved["involvedObject"]["namespace"] = namespace
    return moved


def replicaset_for(deployment: Obj, template_hash: str, revision: int, created: str, image: str | None = None) -> Obj:
    """A ReplicaSet owned by `deployment`, built from the real k9s ReplicaSet fixture.

    The k3s snapshot has the Deployments and their pods but not the ReplicaSets between.
    """
    replicaset: Obj = load_fixture("k8s_replicaset_single_ownerref.json")
    name = f"{deployment['metadata']['name']}-{template_hash}"
    labels = {**deployment["spec"]["selector"]["matchLabels"], "pod-template-hash": template_hash}
    meta = replicaset["metadata"]
    meta.update(
        name=name,
        namespace=deployment["metadata"]["namespace"],
        uid=f"rs-{name}",
        labels=labels,
        creationTimestamp=created,
    )
    meta["annotations"]["deployment.kubernetes.io/revision"] = str(revision)
    meta["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
            "uid": deployment["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    replicaset["spec"]["selector"] = {"matchLabels": labels}
    template = replicaset["spec"]["template"]
    template["metadata"]["labels"] = labels
    template["spec"]["containers"] = copy.deepcopy(deployment["spec"]["template"]["spec"]["containers"])
    if image is not None:
        template["spec"]["containers"][0]["image"] = image
    return replicaset


@dataclass(frozen=True)
class SeenRequest:
    path: str
    query: dict[str, str]
    authorization: str | None
    proxy_authorization: str | None = None  # when reached as a forward proxy


@dataclass(frozen=True)
class Change:
    """One entry of the change history a watch replays from."""

    version: int
    resource: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj


@dataclass
class FakeKubeApi:
    objects: dict[str, list[Obj]] = field(default_factory=dict)  # by resource plural
    # By (resource, namespace, name): a get in a 5,000-pod cluster is not a scan.
    _named: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    logs: dict[tuple[str, str, str, bool], str] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)  # "pods", "pods/log", "*", ...
    requests: list[SeenRequest] = field(default_factory=list)
    url: str = ""
    delay_seconds: float = 0.0  # before every answer (a slow API server)
    watch_forbidden: set[str] = field(default_factory=set)  # resources RBAC grants no `watch` on
    fail_cluster_wide: set[str] = field(default_factory=set)  # listed/watched only per namespace
    watch_cut_seconds: float | None = None  # a proxy closing every watch after this long
    bookmark_seconds: float = 1.0
    history_limit: int = 10_000  # changes kept for watches to replay; older versions get 410
    version: int = 1
    history: list[Change] = field(default_factory=list)
    _oldest_replayable: int = 1
    _runner: web.AppRunner | None = None
    _port: int | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _watches: dict[int, web.Request] = field(default_factory=dict)  # by id()
    # Requests being answered, and the most ever at once: log reads ("log") and the rest ("api").
    in_flight: Counter[str] = field(default_factory=Counter)
    most_in_flight: Counter[str] = field(default_factory=Counter)

    # ---- arranging -------------------------------------------------------------------

    def add(self, *objects: Obj) -> None:
        for obj in objects:
            resource = RESOURCE_OF_KIND[obj["kind"]]
            self.objects.setdefault(resource, []).append(obj)
            self._named[_named_key(resource, obj)] = obj
            self._record(resource, "ADDED", obj)

    def modify(self, obj: Obj) -> None:
        """Replace the object of the same kind, namespace and name (a controller's update)."""
        resource = RESOURCE_OF_KIND[obj["kind"]]
        kept = self.objects.setdefault(resource, [])
        key = _object_key(obj)
        self.objects[resource] = [obj if _object_key(o) == key else o for o in kept]
        self._named[_named_key(resource, obj)] = obj
        self._record(resource, "MODIFIED", obj)

    def _record(self, resource: str, change: str, obj: Obj) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.history.append(Change(self.version, resource, change, copy.deepcopy(obj)))
        if len(self.history) > self.history_limit:
            dropped = self.history[: len(self.history) - self.history_limit]
            del self.history[: len(dropped)]
            self._oldest_replayable = dropped[-1].version
        self._changed.set()
        self._changed = asyncio.Event()

    def compact(self) -> None:
        """Forget the change history, as etcd compaction does: older versions answer 410 Gone."""
        self.history.clear()
        self._oldest_replayable = self.version

    def add_fixture(self, filename: str, namespace: str | None = None) -> list[Obj]:
        objects = [{**o, "kind": o.get("kind") or _kind_of_list(filename)} for o in items_of(filename)]
        if namespace is not None:
            objects = [rehome(o, namespace) for o in objects]
        self.add(*objects)
        return objects

    def add_log(self, namespace: str, pod: str, container: str, text: str, *, previous: bool = False) -> None:
        self.logs[(namespace, pod, container, previous)] = text

    def fail(self, resource: str, fault: Fault) -> None:
        """Make every request for `resource` ("pods", "pods/log", "events", "*") misbehave."""
        self.faults[resource] = fault

    def find(self, resource: str, name: str, namespace: str | None = None) -> Obj:
        if namespace is not None and (found := self._named.get((resource, namespace, name))) is not None:
            return found
        return next(
            o
            for o in self.objects.get(resource, [])
            if o["metadata"]["name"] == name and (namespace is None or o["metadata"].get("namespace") == namespace)
        )

    def remove(self, resource: str, name: str) -> None:
        gone = [o for o in self.objects.get(resource, []) if o["metadata"]["name"] == name]
        kept = [o for o in self.objects.get(resource, []) if o["metadata"]["name"] != name]
        self.objects[resource] = kept
        for obj in gone:
            self._named.pop(_named_key(resource, obj), None)
        for obj in gone:
            self._record(resource, "DELETED", obj)

    def forbid_watch(self, *resources: str) -> None:
        """RBAC with get/list but no watch on these resources."""
        self.watch_forbidden.update(resources)

    # ---- observing ---------------------------------------------------------------------

    def count(self, path: str) -> int:
        return Counter(r.path for r in self.requests)[path]

    def watches(self, path: str | None = None) -> int:
        """Watch requests made (to one path, or all)."""
        return sum(1 for r in self.requests if _watching(r.query) and (path is None or r.path == path))

    @property
    def open_watches(self) -> int:
        return len(self._watches)

    @property
    def authorizations(self) -> set[str | None]:
        return {r.authorization for r in self.requests}

    # ---- serving -----------------------------------------------------------------------

    async def start(self) -> str:
        """Serve (again, on the same port after `close`: the API server coming back)."""
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        self._port = self._port or _free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()
        self.url = f"http://127.0.0.1:{self._port}"
        self._release = asyncio.Event()
        return self.url

    async def close(self) -> None:
        self._release.set()  # let hanging handlers finish so the server can stop
        self.cut_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def cut_watches(self) -> None:
        """Drop every open watch connection without a goodbye (a proxy or node going away)."""
        for request in list(self._watches.values()):
            if request.transport is not None:
                request.transport.close()
        self._watches.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = request.headers
        seen = SeenRequest(
            request.path, dict(request.query), headers.get("Authorization"), headers.get("Proxy-Authorization")
        )
        self.requests.append(seen)
        kind = "log" if request.path.endswith("/log") else "api"
        self.in_flight[kind] += 1
        self.most_in_flight[kind] = max(self.most_in_flight[kind], self.in_flight[kind])
        try:
            return await self._answer(request)
        finally:
            self.in_flight[kind] -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        route = _parse_path(request.path)
        if route is None:
            return _status(404, "NotFound", f"the server could not find {request.path}")
        namespace, resource, name, subresource = route
        full = f"{resource}/{subresource}" if subresource else resource
        fault = self.faults.get(full) or self.faults.get("*")
        if fault is not None:
            return await self._misbehave(fault, full, name, namespace)
        if namespace is None and name is None and resource in self.fail_cluster_wide:
            return await self._misbehave("forbidden", full, name, namespace)
        if subresource == "log" and name is not None:
            return self._log(namespace or "", name, request.query)
        if name is not None:
            return self._get(resource, namespace, name)
        if _watching(request.query):
            return await self._watch(request, resource, namespace)
        return self._list(resource, namespace, request.query)

    async def _misbehave(self, fault: Fault, resource: str, name: str | None, namespace: str | None) -> web.Response:
        if fault == "hang":
            await self._release.wait()
            return _status(503, "ServiceUnavailable", "shutting down")
        if fault == "forbidden":
            verb = "get" if name else "list"
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            message = (
                f'{resource} "{name or ""}" is forbidden: User '
                f'"system:serviceaccount:kubebot:kubebot" cannot {verb} resource '
                f'"{resource}" in API group ""{where}'
            )
            return _status(403, "Forbidden", message)
        if fault == "not_found":
            return _status(404, "NotFound", f'{resource} "{name}" not found')
        return web.Response(status=200, text="<html>502 Bad Gateway</html>\x00{", content_type="text/html")

    def _get(self, resource: str, namespace: str | None, name: str) -> web.Response:
        if (found := self._named.get((resource, namespace or "", name))) is not None:
            return web.json_response(found)
        for obj in self.objects.get(resource, []):
            meta = obj["metadata"]
            if meta["name"] == name and (namespace is None or meta.get("namespace") == namespace):
                return web.json_response(obj)
        return _status(404, "NotFound", f'{resource} "{name}" not found')

    def _list(self, resource: str, namespace: str | None, query: Any) -> web.Response:
        matches = _matcher(namespace, query)
        items = sorted((o for o in self.objects.get(resource, []) if matches(o)), key=_object_key)
        version = self.version
        metadata: Obj = {"resourceVersion": str(version)}
        if "limit" in query:
            start = 0
            if query.get("continue"):
                version, start = _read_continue(query["continue"])
                metadata["resourceVersion"] = str(version)
            end = start + int(query["limit"])
            if end < len(items):
                metadata["continue"] = _continue_token(version, end)
                metadata["remainingItemCount"] = len(items) - end
            items = items[start:end]
        kind = LIST_KINDS.get(resource, "List")
        api_version = LIST_API_VERSIONS.get(resource, "v1")
        body = {"kind": kind, "apiVersion": api_version, "metadata": metadata}
        return web.json_response({**body, "items": items})

    async def _watch(self, request: web.Request, resource: str, namespace: str | None) -> web.StreamResponse:
        if resource in self.watch_forbidden:
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            message = (
                f'{resource} is forbidden: User "system:serviceaccount:kubebot:kubebot" '
                f'cannot watch resource "{resource}"{where}'
            )
            return _status(403, "Forbidden", message)
        query = request.query
        matches = _matcher(namespace, query)
        bookmarks = query.get("allowWatchBookmarks", "false").lower() in ("true", "1")
        limit = float(query.get("timeoutSeconds", 1800))
        if self.watch_cut_seconds is not None:
            limit = min(limit, self.watch_cut_seconds)
        since = query.get("resourceVersion", "")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self._watches[id(request)] = request
        try:
            await self._stream(response, resource, matches, since, bookmarks, limit)
        except ConnectionError:
            pass
        finally:
            self._watches.pop(id(request), None)
        return response

    async def _stream(
        self, response: web.StreamResponse, resource: str, matches: Any, since: str, bookmarks: bool, limit: float
    ) -> None:
        loop = asyncio.get_running_loop()
        ends = loop.time() + limit
        if since in ("", "0"):
            # No version: the current state as synthetic ADDED events, then changes.
            for obj in sorted((o for o in self.objects.get(resource, []) if matches(o)), key=_object_key):
                await _send(response, "ADDED", obj)
            seen = self.version
        else:
            seen = int(since)
            if seen < self._oldest_replayable:
                gone = f"too old resource version: {seen} ({self._oldest_replayable})"
                await _send(response, "ERROR", _status_body(410, "Expired", gone))
                return
        next_bookmark = loop.time() + self.bookmark_seconds
        while (now := loop.time()) < ends and not self._release.is_set():
            for change in self.history[bisect.bisect_right(self.history, seen, key=_version_of) :]:
                seen = change.version
                if change.resource == resource and matches(change.obj):
                    await _send(response, change.type, change.obj)
            if bookmarks and now >= next_bookmark:
                kind = LIST_KINDS.get(resource, "List").removesuffix("List")
                await _send(response, "BOOKMARK", {"kind": kind, "metadata": {"resourceVersion": str(self.version)}})
                seen = max(seen, self.version)
                next_bookmark = now + self.bookmark_seconds
            changed = self._changed
            wake = min(ends, next_bookmark if bookmarks else ends) - loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=max(wake, 0.001))

    def _log(self, namespace: str, pod: str, query: Any) -> web.Response:
        try:
            found = self.find("pods", pod, namespace)
        except StopIteration:
            return _status(404, "NotFound", f'pods "{pod}" not found')
        container = query.get("container") or found["spec"]["containers"][0]["name"]
        previous = query.get("previous", "false").lower() in ("true", "1")
        text = self.logs.get((namespace, pod, container, previous))
        if text is None:
            what = "previous terminated container" if previous else "container"
            message = f'{what} "{container}" in pod "{pod}" is waiting to start'
            return _status(400, "BadRequest", message)
        if "tailLines" in query:
            text = "".join(text.splitlines(keepends=True)[-int(query["tailLines"]) :])
        if "limitBytes" in query:
            text = text.encode()[: int(query["limitBytes"])].decode(errors="ignore")
        return web.Response(text=text, content_type="text/plain")


def _version_of(change: Change) -> int:
    return change.version


def _watching(query: Any) -> bool:
    return str(query.get("watch", "false")).lower() in ("true", "1")


def _named_key(resource: str, obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return resource, str(meta.get("namespace") or ""), str(meta["name"])


def _object_key(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta["name"])


def _matcher(namespace: str | None, query: Any) -> Any:
    labels = _label_matcher(query.get("labelSelector", ""))
    fields = _field_matcher(query.get("fieldSelector", ""))

    def matches(obj: Obj) -> bool:
        meta = obj["metadata"]
        in_namespace = namespace is None or meta.get("namespace") == namespace
        return in_namespace and bool(labels(meta.get("labels") or {})) and bool(fields(obj))

    return matches


def _continue_token(version: int, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": version, "start": offset}).encode()).decode()


def _read_continue(token: str) -> tuple[int, int]:
    decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    return int(decoded["rv"]), int(decoded["start"])


async def _send(response: web.StreamResponse, kind: str, obj: Obj) -> None:
    await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")


def _kind_of_list(filename: str) -> str:
    loaded = load_fixture(filename)
    return str(loaded.get("kind", "")).removesuffix("List")


def _parse_path(path: str) -> tuple[str | None, str, str | None, str | None] | None:
    """(namespace, resource, name, subresource) of /api/v1/... or /apis/<g>/<v>/... paths."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        rest = parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    return namespace, resource, name, subresource


def _split_selector(selector: str) -> list[str]:
    """Split on commas that are not inside `in (a,b)`."""
    return [p.strip() for p in re.split(r",(?![^(]*\))", selector) if p.strip()]


def _label_matcher(selector: str) -> Any:
    requirements = _split_selector(selector)

    def matches(labels: dict[str, str]) -> bool:
        for requirement in requirements:
            set_based = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", requirement)
            if set_based:
                key, operator, values = set_based.groups()
                inside = labels.get(key) in {v.strip() for v in values.split(",")}
                if inside != (operator == "in"):
                    return False
            elif requirement.startswith("!"):
                if requirement[1:] in labels:
                    return False
            elif "!=" in requirement:
                key, value = requirement.split("!=", 1)
                if labels.get(key) == value:
                    return False
            elif "=" in requirement:
                key, value = re.split(r"==?", requirement, maxsplit=1)
                if labels.get(key) != value:
                    return False
            elif requirement not in labels:
                return False
        return True

    return matches


def _field_matcher(selector: str) -> Any:
    requirements = _split_selector(selector)

    def value_at(obj: Obj, dotted: str) -> str:
        current: Any = obj
        for part in dotted.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        return "" if current is None else str(current)

    def matches(obj: Obj) -> bool:
        for requirement in requirements:
            if "!=" in requirement:
                key, value = requirement.split("!=", 1)
                if value_at(obj, key) == value:
                    return False
            else:
                key, value = re.split(r"==?", requirement, maxsplit=1)
                if value_at(obj, key) != value:
                    return False
        return True

    return matches


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(_status_body(code, reason, message), status=code)


def _status_body(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---- ready-made clusters from the fixtures ---------------------------------------------------

K3S_CRASHLOOP_POD = "backend-api-75fb46b7bd-xtkrh"
K3S_NODE = "c9b7eea91"
OOM_NAMESPACE = "message-oomkill-pod"
OOM_POD = "oom-kill-job3-gbb89"


def k3s_cluster() -> FakeKubeApi:
    """The one consistent k3s snapshot: pods, events, deployments, services, slices, node,
    and the crash-looping container's previous log; plus the ReplicaSets between."""
    fake = FakeKubeApi()
    for filename in (
        "k8s_podlist_crashloopbackoff_k3s.json",
        "k8s_eventlist_core_v1_k3s.json",
        "k8s_deploymentlist_k3s.json",
        "k8s_servicelist_k3s.json",
        "k8s_endpointslicelist_k3s.json",
        "k8s_nodelist_k3s.json",
    ):
        fake.add_fixture(filename)
    hashes = {
        pod["metadata"]["labels"]["app"]: pod["metadata"]["labels"]["pod-template-hash"] for pod in fake.objects["pods"]
    }
    for deployment in fake.objects["deployments"]:
        app = deployment["spec"]["selector"]["matchLabels"]["app"]
        created = deployment["metadata"]["creationTimestamp"]
        fake.add(replicaset_for(deployment, hashes[app], 1, created))
    previous_log = (FIXTURES / "k8s_pod_logs_previous_crashloop_k3s.txt").read_text()
    fake.add_log("default", K3S_CRASHLOOP_POD, "api-server", previous_log, previous=True)
    return fake


def minikube_oom_cluster() -> FakeKubeApi:
    """The OOMKilled Job pod, with the events recorded for it (kept in another namespace of
    the source bundle, moved into the pod's)."""
    fake = FakeKubeApi()
    fake.add_fixture("k8s_podlist_oomkilled_minikube.json")
    fake.add_fixture("k8s_eventlist_failedscheduling_minikube.json", namespace=OOM_NAMESPACE)
    return fake
