"""The Kubernetes manifests: schema-valid, composed consistently, and wired to each other.

Everything runs offline. Built-in kinds are checked against the Kubernetes OpenAPI schemas
(kubernetes-validate, strict); Prometheus Operator kinds, whose CRDs it does not ship,
against small schemas of the fields used here.
"""

from __future__ import annotations

import copy
import os
import posixpath
import re
import shutil
import subprocess
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from enrichers.kubernetes.api import RESOURCE_GROUPS
from receiver.config import load as load_config

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"
# The oldest Kubernetes still commonly run, and the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
# What the hand-written kustomize reader below understands; anything else must fail loudly.
READER_KEYS = {"apiVersion", "kind", "namespace", "resources", "configMapGenerator"}
# The entry points a user applies with `kubectl apply -k`.
ENTRY_POINTS = ("", "base", "monitoring", "overlays/example", "overlays/ha")

Obj = dict[str, Any]


# --- reading manifests -------------------------------------------------------------


def yaml_docs(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kustomizations() -> list[Path]:
    return sorted(MANIFESTS.rglob("kustomization.yaml"))


def generator_files(entry: Obj) -> Iterator[tuple[str, str]]:
    """(key, source path) of a configMapGenerator's `files`, `key=path` or `path`."""
    for item in entry.get("files", []):
        key, _, source = str(item).rpartition("=")
        yield key or posixpath.basename(source), source


def read_kustomization(directory: Path) -> list[Obj]:
    """The objects a kustomization without patches produces (names without hash suffix)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unsupported = set(kustomization) - READER_KEYS
    assert not unsupported, f"{directory}: the test reader does not handle {unsupported}"
    objects: list[Obj] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        objects += read_kustomization(path) if path.is_dir() else yaml_docs(path)
    for generator in kustomization.get("configMapGenerator", []):
        data = {key: (directory / source).read_text(encoding="utf-8") for key, source in generator_files(generator)}
        labels = generator.get("options", {}).get("labels", {})
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"], "labels": labels},
                "data": data,
            }
        )
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects


def install() -> list[Obj]:
    """What `kubectl apply -k manifests/` creates (generated names without their hash)."""
    objects = read_kustomization(MANIFESTS)
    assert objects, "the kustomization rendered no objects"
    return objects


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kubectl_kustomize(entry: str) -> list[Obj]:
    """What kubectl renders for one entry point; never nothing. Without kubectl the test is
    skipped on a workstation but fails under CI (env CI set), so it cannot pass unrun."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl (with its built-in kustomize) is required under CI")
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS / entry)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rendered = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert rendered, f"kubectl kustomize {entry or '.'} rendered no objects"
    return rendered


# --- schemas for the Prometheus Operator kinds ---------------------------------------

DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"}
STRINGS = {"type": "array", "items": {"type": "string"}}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
SECRET_KEY = {
    "type": "object",
    "required": ["name", "key"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "key": {"type": "string"},
        "optional": {"type": "boolean"},
    },
}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}},
}


def crd_schema(spec: Obj) -> Obj:
    metadata = {"type": "object", "required": ["name", "namespace"]}
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {"apiVersion": {}, "kind": {}, "metadata": metadata, "spec": spec},
    }


def closed(required: list[str], properties: Obj) -> Obj:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


CRD_SCHEMAS: dict[tuple[str, str], Obj] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): crd_schema(
        closed(
            ["selector", "endpoints"],
            {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": closed(
                        ["port"],
                        {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": DURATION,
                            "scrapeTimeout": DURATION,
                            "honorLabels": {"type": "boolean"},
                        },
                    ),
                },
            },
        )
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): crd_schema(
        closed(
            ["groups"],
            {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": closed(
                        ["name", "rules"],
                        {
                            "name": {"type": "string"},
                            "interval": DURATION,
                            "rules": {
                                "type": "array",
                                "items": closed(
                                    ["expr"],
                                    {
                                        "alert": {"type": "string"},
                                        "record": {"type": "string"},
                                        "expr": {"type": "string"},
                                        "for": DURATION,
                                        "keep_firing_for": DURATION,
                                        "labels": STRING_MAP,
                                        "annotations": STRING_MAP,
                                    },
                                ),
                            },
                        },
                    ),
                }
            },
        )
    ),
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): crd_schema(
        closed(
            ["route", "receivers"],
            {
                "route": closed(
                    ["receiver"],
                    {
                        "receiver": {"type": "string"},
                        "groupBy": STRINGS,
                        "groupWait": DURATION,
                        "groupInterval": DURATION,
                        "repeatInterval": DURATION,
                        "continue": {"type": "boolean"},
                        "matchers": {
                            "type": "array",
                            "items": closed(
                                ["name"],
                                {
                                    "name": {"type": "string"},
                                    "value": {"type": "string"},
                                    "matchType": {"enum": ["=", "!=", "=~", "!~"]},
                                },
                            ),
                        },
                    },
                ),
                "receivers": {
                    "type": "array",
                    "items": closed(
                        ["name"],
                        {
                            "name": {"type": "string"},
                            "webhookConfigs": {
                                "type": "array",
                                "items": closed(
                                    [],
                                    {
                                        "url": {"type": "string", "pattern": "^https?://"},
                                        "urlSecret": SECRET_KEY,
                                        "sendResolved": {"type": "boolean"},
                                        "maxAlerts": {"type": "integer", "minimum": 0},
                                        "httpConfig": closed(
                                            [],
                                            {
                                                "authorization": closed(
                                                    ["credentials"],
                                                    {
                                                        "type": {"type": "string"},
                                                        "credentials": SECRET_KEY,
                                                    },
                                                ),
                                                "basicAuth": {"type": "object"},
                                            },
                                        ),
                                    },
                                ),
                            },
                        },
                    ),
                },
            },
        )
    ),
}


def validate(obj: Obj, version: str) -> None:
    schema = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if schema is not None:
        jsonschema.Draft202012Validator(schema).validate(obj)
    else:
        kubernetes_validate.validate(obj, version, strict=True)


# --- every manifest is valid ------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_installed_object_is_valid_for_its_schema(version: str) -> None:
    for obj in install():
        validate(obj, version)


def test_the_hand_written_reader_renders_the_objects_kubectl_renders() -> None:
    def identity(obj: Obj, known: set[str]) -> tuple[str, str | None, str]:
        name = obj["metadata"]["name"]
        unhashed = name.rsplit("-", 1)[0]  # a generated name, e.g. kubebot-config-<hash>
        if name not in known and unhashed in known:
            name = unhashed
        return obj["kind"], obj["metadata"].get("namespace"), name

    ours = install()
    known = {o["metadata"]["name"] for o in ours}
    expected = sorted(identity(o, known) for o in kubectl_kustomize(""))
    assert sorted(identity(o, known) for o in ours) == expected


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_renders_with_kustomize_to_valid_objects(entry: str) -> None:
    for obj in kubectl_kustomize(entry):
        validate(obj, K8S_VERSIONS[-1])


def test_the_example_overlay_changes_image_storage_and_secret_handling() -> None:
    rendered = kubectl_kustomize("overlays/example")
    container = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("registry.example.com/")
    assert one(rendered, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert [o for o in rendered if o["kind"] == "Secret"] == []


def test_the_ha_overlay_runs_two_replicas_on_postgresql_with_no_volume() -> None:
    rendered = kubectl_kustomize("overlays/ha")
    deployment = one(rendered, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    budget = one(rendered, "PodDisruptionBudget")["spec"]
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]["type"]) == (2, "RollingUpdate")
    assert (budget.get("minAvailable"), budget.get("maxUnavailable")) == (1, None)
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert [o for o in rendered if o["kind"] == "PersistentVolumeClaim"] == []
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"])


def test_the_ha_overlay_reads_the_database_url_and_password_from_the_secret() -> None:
    rendered = kubectl_kustomize("overlays/ha")
    config_map = next(o for o in rendered if o["kind"] == "ConfigMap" and "config.yaml" in o.get("data", {}))
    config = load_config(config_map["data"]["config.yaml"], deployed_environment(rendered))
    assert (config.store.url or "").startswith("postgresql://")
    assert config.store.password_file == mounted_path(rendered, "kubebot-secrets", "store-password")
    assert config.store.password_file != mounted_path(rendered, "kubebot-secrets", "bearer-token")
    assert "REPLACE-ME" in one(rendered, "Secret")["stringData"]["store-password"]


def test_every_reference_the_rendered_deployment_makes_exists_after_name_hashing() -> None:
    rendered = kubectl_kustomize("")
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    for volume in pod["volumes"]:
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in names
        if "secret" in volume:
            assert ("Secret", volume["secret"]["secretName"]) in names


# --- composition ------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", kustomizations(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_every_resource_patch_and_file_a_kustomization_lists_exists(kustomization: Path) -> None:
    directory = kustomization.parent
    spec = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
    listed = [*spec.get("resources", []), *(p["path"] for p in spec.get("patches", []))]
    listed += [src for gen in spec.get("configMapGenerator", []) for _, src in generator_files(gen)]
    for entry in listed:
        path = directory / entry
        assert path.is_file() or (path / "kustomization.yaml").is_file(), f"{kustomization}: {entry} missing"


def test_every_manifest_file_is_used_by_some_kustomization() -> None:
    used: set[Path] = set()
    for kustomization in kustomizations():
        spec = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        entries = [*spec.get("resources", []), *(p["path"] for p in spec.get("patches", []))]
        entries += [src for gen in spec.get("configMapGenerator", []) for _, src in generator_files(gen)]
        used |= {(kustomization.parent / e).resolve() for e in entries}
    files = {p.resolve() for p in MANIFESTS.rglob("*") if p.suffix in {".yaml", ".yml", ".json"}}
    orphans = files - used - {k.resolve() for k in kustomizations()}
    assert set() == orphans


def test_the_install_has_every_kind_a_platform_team_needs() -> None:
    kinds = {o["kind"] for o in install()}
    expected = {
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Secret",
        "PersistentVolumeClaim", "Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget",
        "ServiceMonitor", "PrometheusRule", "AlertmanagerConfig",
    }  # fmt: skip
    assert set() == expected - kinds


def test_no_two_objects_share_kind_namespace_and_name() -> None:
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in install()]
    assert len(keys) == len(set(keys))


def test_every_namespaced_object_lives_in_the_kubebot_namespace() -> None:
    namespace = one(install(), "Namespace")["metadata"]["name"]
    for obj in install():
        if obj["kind"] not in CLUSTER_SCOPED:
            assert namespace == obj["metadata"]["namespace"], obj["metadata"]["name"]


# --- names and labels line up ----------------------------------------------------------


def pod_labels(objects: list[Obj]) -> dict[str, str]:
    labels: dict[str, str] = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def container_ports(objects: list[Obj]) -> dict[str, int]:
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def test_deployment_selector_matches_its_own_pod_template() -> None:
    deployment = one(install(), "Deployment")
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(install()))


def test_service_selects_the_deployment_pods_on_a_named_container_port() -> None:
    objects = install()
    service = one(objects, "Service")
    assert selects(service["spec"]["selector"], pod_labels(objects))
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in container_ports(objects)


def test_service_monitor_selects_the_service_and_scrapes_a_port_it_has() -> None:
    objects = install()
    service, monitor = one(objects, "Service"), one(objects, "ServiceMonitor")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert service["metadata"]["namespace"] == monitor["metadata"]["namespace"]
    assert "namespaceSelector" not in monitor["spec"]
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports
        assert endpoint["path"] == "/metrics"


def test_network_policy_and_disruption_budget_select_the_deployment_pods() -> None:
    objects = install()
    policy, budget = one(objects, "NetworkPolicy"), one(objects, "PodDisruptionBudget")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels(objects))
    assert selects(budget["spec"]["selector"]["matchLabels"], pod_labels(objects))
    for rule in policy["spec"]["ingress"]:
        for port in rule["ports"]:
            assert port["port"] in container_ports(objects)


def test_network_policy_admits_only_alertmanager_and_prometheus_from_monitoring() -> None:
    policy = one(install(), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert len(sources) == 1
    (peer,) = sources
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    (expression,) = peer["podSelector"]["matchExpressions"]
    assert (expression["key"], expression["operator"]) == ("app.kubernetes.io/name", "In")
    assert {"alertmanager", "prometheus"} == set(expression["values"])


def test_deployment_runs_as_the_service_account_the_rbac_binds() -> None:
    objects = install()
    account = one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    one(objects, "ServiceAccount", account)
    subjects = one(objects, "ClusterRoleBinding")["subjects"]
    assert {"kind": "ServiceAccount", "name": account, "namespace": "kubebot"} in subjects


def test_the_cluster_role_grants_read_only_access_to_every_resource_the_enricher_reads() -> None:
    rules = one(install(), "ClusterRole")["rules"]
    granted = {(group, resource) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]}
    assert {(group, resource) for resource, group in RESOURCE_GROUPS.items()} <= granted
    assert all(sorted(rule["verbs"]) == ["get", "list", "watch"] for rule in rules)


def test_deployment_volumes_and_env_refer_to_objects_and_keys_that_exist() -> None:
    objects = install()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        if "configMap" in volume:
            one(objects, "ConfigMap", volume["configMap"]["name"])
        if "persistentVolumeClaim" in volume:
            one(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
        if "secret" in volume:
            secret = one(objects, "Secret", volume["secret"]["secretName"])
            for item in volume["secret"].get("items", []):
                assert item["key"] in secret["stringData"]
    for env in pod["containers"][0].get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in one(objects, "Secret", ref["name"])["stringData"]


def test_alertmanager_config_posts_to_the_service_with_the_token_kubebot_reads() -> None:
    objects = install()
    service = one(objects, "Service")
    (receiver,) = one(objects, "AlertmanagerConfig")["spec"]["receivers"]
    (webhook,) = receiver["webhookConfigs"]
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    port = service["spec"]["ports"][0]["port"]
    assert f"http://{name}.{namespace}.svc:{port}/api/v1/alerts" == webhook["url"]
    assert webhook["sendResolved"] is True
    credentials = webhook["httpConfig"]["authorization"]["credentials"]
    secret = one(objects, "Secret", credentials["name"])
    assert credentials["key"] in secret["stringData"]
    assert (
        mounted_path(objects, credentials["name"], credentials["key"]) == deployed_config()["auth"]["bearer_token_file"]
    )


def test_kubebot_alerts_about_itself_are_not_routed_to_kubebot() -> None:
    route = one(install(), "AlertmanagerConfig")["spec"]["route"]
    assert {"name": "alertname", "matchType": "!~", "value": "KubeBot.*"} in route["matchers"]


# --- the pod is locked down ------------------------------------------------------------


def test_pod_runs_non_root_with_read_only_root_no_capabilities_and_default_seccomp() -> None:
    pod = one(install(), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "add" not in context["capabilities"]


def test_namespace_enforces_the_restricted_pod_security_standard() -> None:
    labels = one(install(), "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_container_has_resources_and_probes_on_healthz_and_readyz() -> None:
    container = one(install(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_single_writer_of_sqlite_store_runs_one_replica_replaced_by_recreate() -> None:
    objects = install()
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert one(objects, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
    # With one replica, minAvailable: 1 would block every node drain.
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


# --- the config the pod reads ------------------------------------------------------------


def mounts(objects: list[Obj]) -> dict[str, PurePosixPath]:
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {m["name"]: PurePosixPath(m["mountPath"]) for m in container["volumeMounts"]}


def mounted_path(objects: list[Obj], secret_name: str, key: str) -> str:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        if volume.get("secret", {}).get("secretName") == secret_name:
            items = {i["key"]: i["path"] for i in volume["secret"].get("items", [{"key": key, "path": key}])}
            return str(mounts(objects)[volume["name"]] / items[key])
    raise AssertionError(f"secret {secret_name} is not mounted")


def deployed_environment(objects: list[Obj]) -> dict[str, str]:
    """The KUBEBOT_* variables the container gets, with Secret values resolved."""
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    environ: dict[str, str] = {}
    for env in container.get("env", []):
        if "value" in env:
            environ[env["name"]] = env["value"]
        else:
            ref = env["valueFrom"]["secretKeyRef"]
            environ[env["name"]] = one(objects, "Secret", ref["name"])["stringData"][ref["key"]]
    return environ


def deployed_config() -> dict[str, Any]:
    config_map = one(install(), "ConfigMap", "kubebot-config")
    loaded: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return loaded


def test_configmap_config_is_valid_for_kubebot_with_the_deployment_environment() -> None:
    objects = install()
    text = one(objects, "ConfigMap", "kubebot-config")["data"]["config.yaml"]
    config = load_config(text, deployed_environment(objects))
    # A container's loopback is unreachable from the Service and the kubelet.
    assert ip_address(config.server.host).is_unspecified
    assert config.notify.default_urls


def test_kubebot_listens_on_the_container_port_and_stores_on_the_volume() -> None:
    objects = install()
    config = load_config(one(objects, "ConfigMap", "kubebot-config")["data"]["config.yaml"], {})
    assert config.server.port == container_ports(objects)["http"]
    claim_mount = next(
        mounts(objects)[v["name"]]
        for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    )
    assert PurePosixPath(config.store.path).is_relative_to(claim_mount)


def test_the_example_overlay_environment_overrides_are_valid_config() -> None:
    rendered = kubectl_kustomize("overlays/example")
    config_map = next(o for o in rendered if o["kind"] == "ConfigMap" and "config.yaml" in o.get("data", {}))
    base_secret = one(install(), "Secret")
    # The overlay deletes the Secret; the real one has the same keys as the example.
    objects = [*rendered, copy.deepcopy(base_secret)]
    load_config(config_map["data"]["config.yaml"], deployed_environment(objects))


def test_secret_example_holds_placeholders_only() -> None:
    secret = one(install(), "Secret")
    assert re.search(r"REPLACE-ME", secret["stringData"]["bearer-token"])
    for value in secret["stringData"].values():
        assert not re.search(r"://[^/\s]*:[^@\s]+@", value), "no credentials in example URLs"
