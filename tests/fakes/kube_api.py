"""A fake Kubernetes API server: a real aiohttp server on 127.0.0.1 that answers the real
REST paths with real object JSON from ../shared/fixtures/kubernetes.

It understands what the enricher asks: GET of one object, lists with labelSelector and
fieldSelector (pods, events, nodes, services, endpointslices, the apps/v1 and batch/v1
workloads, persistentvolumeclaims, persistentvolumes, storageclasses, autoscaling/v2
horizontalpodautoscalers), `pods/{name}/log` with container, previous, tailLines and limitBytes. It
counts requests, records the Authorization header, and can be told to hang, answer 403 or
404, or send garbage for one resource.
"""

from __future__ import annotations

import asyncio
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


@dataclass
class FakeKubeApi:
    objects: dict[str, list[Obj]] = field(default_factory=dict)  # by resource plural
    logs: dict[tuple[str, str, str, bool], str] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)  # "pods", "pods/log", "*", ...
    requests: list[SeenRequest] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    # ---- arranging -------------------------------------------------------------------

    def add(self, *objects: Obj) -> None:
        for obj in objects:
            self.objects.setdefault(RESOURCE_OF_KIND[obj["kind"]], []).append(obj)

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
        return next(
            o
            for o in self.objects.get(resource, [])
            if o["metadata"]["name"] == name and (namespace is None or o["metadata"].get("namespace") == namespace)
        )

    def remove(self, resource: str, name: str) -> None:
        kept = [o for o in self.objects.get(resource, []) if o["metadata"]["name"] != name]
        self.objects[resource] = kept

    # ---- observing ---------------------------------------------------------------------

    def count(self, path: str) -> int:
        return Counter(r.path for r in self.requests)[path]

    @property
    def authorizations(self) -> set[str | None]:
        return {r.authorization for r in self.requests}

    # ---- serving -----------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = _free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        self._release.set()  # let hanging handlers finish so the server can stop
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(SeenRequest(request.path, dict(request.query), request.headers.get("Authorization")))
        route = _parse_path(request.path)
        if route is None:
            return _status(404, "NotFound", f"the server could not find {request.path}")
        namespace, resource, name, subresource = route
        full = f"{resource}/{subresource}" if subresource else resource
        fault = self.faults.get(full) or self.faults.get("*")
        if fault is not None:
            return await self._misbehave(fault, full, name, namespace)
        if subresource == "log" and name is not None:
            return self._log(namespace or "", name, request.query)
        if name is not None:
            return self._get(resource, namespace, name)
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
        for obj in self.objects.get(resource, []):
            meta = obj["metadata"]
            if meta["name"] == name and (namespace is None or meta.get("namespace") == namespace):
                return web.json_response(obj)
        return _status(404, "NotFound", f'{resource} "{name}" not found')

    def _list(self, resource: str, namespace: str | None, query: Any) -> web.Response:
        labels = _label_matcher(query.get("labelSelector", ""))
        fields = _field_matcher(query.get("fieldSelector", ""))
        items = [
            o
            for o in self.objects.get(resource, [])
            if (namespace is None or o["metadata"].get("namespace") == namespace)
            and labels(o["metadata"].get("labels") or {})
            and fields(o)
        ]
        kind = LIST_KINDS.get(resource, "List")
        version = LIST_API_VERSIONS.get(resource, "v1")
        body = {"kind": kind, "apiVersion": version, "metadata": {"resourceVersion": "1"}}
        return web.json_response({**body, "items": items})

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
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


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
