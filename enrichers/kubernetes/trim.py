"""Cached objects cut down to what KubeBot reads, so a large cluster fits in modest memory.

What stays is what the fact code (facts.py, kinds.py) and the selectors the enricher sends
read: names, labels, owners, the few annotations used, a pod spec's node, containers'
names, images and resources and claimed volumes, and the status fields. What goes:
managedFields, every other annotation (last-applied-configuration is often the largest
field), probes, env, commands, mounts, a node's image list. Pure functions; the input is
not changed.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

KEPT_ANNOTATIONS = frozenset({"deployment.kubernetes.io/revision", "volume.beta.kubernetes.io/storage-class"})
KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
    "ownerReferences",
)
KEPT_CONTAINER = ("name", "image", "resources")
# A node's status lists every image it holds (often hundreds): read nowhere.
DROPPED_NODE_STATUS = ("images", "volumesInUse", "volumesAttached")
WORKLOADS_WITH_TEMPLATES = frozenset({"deployments", "replicasets", "statefulsets", "daemonsets", "jobs"})


def trim(resource: str, obj: Json) -> Json:
    """A smaller copy of `obj` (a `resource`, by its plural) with what KubeBot reads."""
    trimmed = dict(obj)
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        trimmed["metadata"] = _metadata(metadata)
    spec = obj.get("spec")
    if isinstance(spec, dict):
        trimmed["spec"] = _spec(resource, spec)
    status = obj.get("status")
    if resource == "nodes" and isinstance(status, dict):
        trimmed["status"] = {k: v for k, v in status.items() if k not in DROPPED_NODE_STATUS}
    return trimmed


def _metadata(metadata: Json) -> Json:
    kept = {key: metadata[key] for key in KEPT_METADATA if key in metadata}
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        wanted = {k: v for k, v in annotations.items() if k in KEPT_ANNOTATIONS}
        if wanted:
            kept["annotations"] = wanted
    return kept


def _spec(resource: str, spec: Json) -> Json:
    if resource == "pods":
        return pod_spec(spec)
    if resource in WORKLOADS_WITH_TEMPLATES:
        return _with_template(spec)
    if resource == "cronjobs":
        job_template = spec.get("jobTemplate")
        if isinstance(job_template, dict) and isinstance(job_template.get("spec"), dict):
            return {**spec, "jobTemplate": {**job_template, "spec": _with_template(job_template["spec"])}}
    return spec


def _with_template(spec: Json) -> Json:
    template = spec.get("template")
    if not isinstance(template, dict):
        return spec
    labels = (template.get("metadata") or {}).get("labels")
    trimmed: Json = {"metadata": {"labels": labels} if labels else {}}
    if isinstance(template.get("spec"), dict):
        trimmed["spec"] = pod_spec(template["spec"])
    return {**spec, "template": trimmed}


def pod_spec(spec: Json) -> Json:
    kept: Json = {key: spec[key] for key in ("nodeName", "priority") if key in spec}
    for key in ("containers", "initContainers"):
        containers = spec.get(key)
        if isinstance(containers, list):
            kept[key] = [_container(c) for c in containers if isinstance(c, dict)]
    volumes = spec.get("volumes")
    if isinstance(volumes, list):
        claimed = [
            {"name": v.get("name"), "persistentVolumeClaim": v["persistentVolumeClaim"]}
            for v in volumes
            if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)
        ]
        if claimed:
            kept["volumes"] = claimed
    return kept


def _container(container: Json) -> Json:
    return {key: container[key] for key in KEPT_CONTAINER if key in container}
