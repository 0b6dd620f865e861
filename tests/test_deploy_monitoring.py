"""The Grafana dashboard and the alert rules query metrics KubeBot really exports.

The exported names come from the code (receiver.metrics.Metrics), not from a hand list,
so renaming a metric without updating the dashboard or the rules fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from receiver.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "manifests" / "monitoring"
DASHBOARD = MONITORING / "kubebot-dashboard.json"
RULES = MONITORING / "prometheusrule.yaml"
SERVICE = REPO / "manifests" / "base" / "service.yaml"
METRIC_NAME = re.compile(r"\bkubebot_[a-zA-Z0-9_]+")
# prometheus_client's exposition: which series names each family type produces
# (`_created` left out: KubeBot turns those series off).
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text(encoding="utf-8"))["spec"]["groups"]
    return groups


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package prometheus; `make system-deps`)")
    return found


# --- the exported names themselves ---------------------------------------------------


def test_exported_names_follow_prometheus_client_suffixes() -> None:
    names = exported_names()
    assert {"kubebot_webhook_requests_total", "kubebot_webhook_seconds_bucket"} <= names
    assert "kubebot_queue_depth" in names
    assert "kubebot_webhook_requests" not in names


# --- Grafana -------------------------------------------------------------------------


def test_dashboard_is_json_with_a_stable_uid_and_prometheus_datasource_variable() -> None:
    board = dashboard()
    assert board["uid"] == "kubebot"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"


def test_every_dashboard_panel_queries_only_metrics_kubebot_exports() -> None:
    exported = exported_names()
    for panel in panels(dashboard()):
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            used = set(METRIC_NAME.findall(target["expr"]))
            assert used, f"panel {panel['title']!r} queries no KubeBot metric"
            assert set() == used - exported, f"panel {panel['title']!r}"


def test_dashboard_variable_queries_name_exported_metrics() -> None:
    exported = exported_names()
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            assert set() == set(METRIC_NAME.findall(variable["definition"])) - exported


def test_dashboard_covers_every_exported_family() -> None:
    queried = {
        name
        for panel in panels(dashboard())
        for target in panel.get("targets", [])
        for name in METRIC_NAME.findall(target["expr"])
    }
    families = {family.name for family in Metrics().registry.collect()}
    unshown = {f for f in families if not any(q.startswith(f) for q in queried)}
    assert set() == unshown


def test_dashboard_panels_do_not_overlap_on_the_grid() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in panels(dashboard()):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert set() == cells & mine, f"panel {panel['title']!r} overlaps another"
        cells |= mine


def test_dashboard_ids_are_unique() -> None:
    ids = [panel["id"] for panel in panels(dashboard())]
    assert len(ids) == len(set(ids))


def test_dashboard_and_rules_select_the_job_the_service_monitor_produces() -> None:
    # A ServiceMonitor's job label is the Service name unless jobLabel says otherwise.
    service = yaml.safe_load(SERVICE.read_text(encoding="utf-8"))["metadata"]["name"]
    expressions = [r["expr"] for r in alerts()]
    expressions += [t["expr"] for p in panels(dashboard()) for t in p.get("targets", [])]
    for expression in expressions:
        assert set() == set(re.findall(r'job="([^"]*)"', expression)) - {service}, expression


# --- Prometheus rules ------------------------------------------------------------------


def test_every_alert_rule_queries_only_metrics_kubebot_exports_or_up() -> None:
    exported = exported_names()
    for rule in alerts():
        used = set(METRIC_NAME.findall(rule["expr"]))
        assert used or re.search(r"\bup\{", rule["expr"]), rule["alert"]
        assert set() == used - exported, rule["alert"]


def test_rules_alert_on_down_dead_letters_queue_and_enrichment() -> None:
    names = {rule["alert"] for rule in alerts()}
    expected = {
        "KubeBotDown",
        "KubeBotDeadLettersGrowing",
        "KubeBotQueueBackingUp",
        "KubeBotEnrichmentSourceFailing",
    }
    assert set() == expected - names
    for rule in alerts():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert {"summary", "description"} <= rule["annotations"].keys()


def test_rule_groups_pass_promtool_check_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups()}), encoding="utf-8")
    done = subprocess.run(
        [promtool(), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def series(metric: str, **labels: str) -> str:
    """A series as the ServiceMonitor's scrape labels it, plus the metric's own labels."""
    pairs = {"job": "kubebot", "namespace": "kubebot", **labels}
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def given(*series_values: tuple[str, str]) -> list[dict[str, str]]:
    return [{"series": name, "values": values} for name, values in series_values]


def quiet(at: str, alertname: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alertname, "exp_alerts": []}


def fires(at: str, alertname: str, **labels: str) -> dict[str, Any]:
    """At `at`, exactly one `alertname` alert, with (at least) these labels."""
    return {"eval_time": at, "alertname": alertname, "exp_alerts": [{"exp_labels": labels}]}


# Series are sampled every minute; `values` uses promtool's expanding notation.
RULE_TESTS: list[dict[str, Any]] = [
    {
        "name": "down while scraped and failing",
        "input_series": given((series("up"), "1 1 0x20")),
        "alert_rule_test": [
            quiet("4m", "KubeBotDown"),
            fires("10m", "KubeBotDown", severity="critical", job="kubebot", namespace="kubebot"),
        ],
    },
    {
        "name": "down when the target vanished from discovery",
        "input_series": given((series("up"), "1x3 _x30")),
        "alert_rule_test": [
            quiet("5m", "KubeBotDown"),
            fires("20m", "KubeBotDown", severity="critical", job="kubebot"),
        ],
    },
    {
        "name": "dead letters growing per channel",
        "input_series": given(
            (series("kubebot_dead_letters_total", scheme="slack"), "0x10 1x10"),
            (series("kubebot_dead_letters_total", scheme="mailto"), "3x20"),
        ),
        "alert_rule_test": [
            quiet("9m", "KubeBotDeadLettersGrowing"),
            fires("15m", "KubeBotDeadLettersGrowing", severity="warning", namespace="kubebot", scheme="slack"),
        ],
    },
    {
        "name": "queue backing up only when it stays deep",
        "input_series": given((series("kubebot_queue_depth"), "500x30"), (series("kubebot_outbox_depth"), "0x30")),
        "alert_rule_test": [
            quiet("10m", "KubeBotQueueBackingUp"),
            fires("20m", "KubeBotQueueBackingUp", severity="warning", namespace="kubebot"),
            quiet("20m", "KubeBotOutboxBackingUp"),
        ],
    },
    {
        "name": "an enrichment source failing most lookups, not one that works",
        "input_series": given(
            (series("kubebot_enrichment_failures_total", source="loki"), "0+10x60"),
            (series("kubebot_enrichment_seconds_count", source="loki"), "0+10x60"),
            (series("kubebot_enrichment_failures_total", source="kubernetes"), "0x60"),
            (series("kubebot_enrichment_seconds_count", source="kubernetes"), "0+10x60"),
        ),
        "alert_rule_test": [
            fires("40m", "KubeBotEnrichmentSourceFailing", severity="warning", namespace="kubebot", source="loki"),
        ],
    },
    {
        "name": "no replica holds the leader lock, then two do",
        "input_series": given(
            (series("kubebot_leader", pod="kubebot-a"), "0x10 1x10 1x10"),
            (series("kubebot_leader", pod="kubebot-b"), "0x10 0x10 1x10"),
        ),
        "alert_rule_test": [
            fires("9m", "KubeBotLeaderCount", severity="warning", namespace="kubebot"),
            quiet("19m", "KubeBotLeaderCount"),
            fires("30m", "KubeBotLeaderCount", severity="warning", namespace="kubebot"),
        ],
    },
    {
        "name": "webhooks refused with 401 mean a token mismatch",
        "input_series": given(
            (series("kubebot_webhook_requests_total", code="401"), "0+2x30"),
            (series("kubebot_webhook_requests_total", code="200"), "0+20x30"),
        ),
        "alert_rule_test": [
            fires("20m", "KubeBotWebhookUnauthorized", severity="warning", namespace="kubebot"),
            quiet("20m", "KubeBotWebhookErrors"),
        ],
    },
]


def test_alert_rules_fire_on_the_faults_they_name_and_stay_quiet_otherwise(tmp_path: Path) -> None:
    # Annotations are checked by `promtool check rules`; here only when and with which labels.
    groups = [
        {
            **group,
            "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in group["rules"]],
        }
        for group in rule_groups()
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    unit = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": RULE_TESTS}
    for test in RULE_TESTS:
        test["interval"] = "1m"
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(unit), encoding="utf-8")
    done = subprocess.run(
        [promtool(), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the documented alertmanager.yml snippet ---------------------------------------------

README = REPO / "manifests" / "README.md"


def documented_alertmanager_yml() -> str:
    text = README.read_text(encoding="utf-8")
    marker = text.index("<!-- alertmanager.yml")
    block = re.search(r"```yaml\n(.*?)```", text[marker:], re.DOTALL)
    assert block is not None, "no yaml block after the alertmanager.yml marker"
    return block.group(1)


def test_documented_alertmanager_yml_passes_amtool_check_config(tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (Debian package prometheus-alertmanager)")
    config = tmp_path / "alertmanager.yml"
    config.write_text(documented_alertmanager_yml(), encoding="utf-8")
    done = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_documented_alertmanager_yml_posts_with_bearer_auth_to_the_service() -> None:
    config = yaml.safe_load(documented_alertmanager_yml())
    service = yaml.safe_load(SERVICE.read_text(encoding="utf-8"))
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    port = service["spec"]["ports"][0]["port"]
    (receiver,) = [r for r in config["receivers"] if r["name"] == "kubebot"]
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"] == f"http://{name}.{namespace}.svc:{port}/api/v1/alerts"
    assert webhook["http_config"]["authorization"]["type"] == "Bearer"
    assert webhook["send_resolved"] is True
    (route,) = [r for r in config["route"]["routes"] if r["receiver"] == "kubebot"]
    assert route["continue"] is True
