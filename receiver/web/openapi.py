"""The OpenAPI 3 description of KubeBot's HTTP interface, served at GET /api/v1/openapi.json.

Declared as data next to the code it describes; a test checks that every route the app
registers appears here, so a new endpoint cannot ship undocumented.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

OPENAPI_PATH = "/api/v1/openapi.json"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _path_parameter(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _get(
    summary: str, responses: dict[str, Any], *, parameters: list[Any] | None = None, secured: bool = True
) -> dict[str, Any]:
    """A path with one GET operation; `secured`: behind the configured credentials."""
    operation: dict[str, Any] = {"summary": summary, "security": _SECURED if secured else []}
    if parameters is not None:
        operation["parameters"] = parameters
    return {"get": {**operation, "responses": responses}}


def _form_post(summary: str, fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A dashboard form on one incident: the same action as the API's, answered in HTML."""
    properties = {"csrf_token": {"type": "string", "description": "the token the incident page put in the form"}}
    schema = {"type": "object", "required": ["csrf_token", *required], "properties": {**properties, **fields}}
    return {
        "post": {
            "summary": summary,
            "security": _SECURED,
            "parameters": [_path_parameter("id", "integer")],
            "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema}}},
            "responses": {
                "303": {"description": "done; back to the incident page"},
                "400": _html("the incident page, naming the bad field"),
                **_UNAUTHORIZED,
                "403": _html("no valid CSRF token for this incident"),
                "404": _html("no such incident"),
                "409": _html("the incident page: no Alertmanager configured (silence)"),
                "502": _html("the incident page: Alertmanager refused (silence)"),
                "503": _html("the incident page: Alertmanager unreachable (silence)"),
            },
        }
    }


def _action_post(summary: str, body: dict[str, Any]) -> dict[str, Any]:
    """A POST on one incident that records what an engineer did."""
    return {
        "post": {
            "summary": summary,
            "security": _SECURED,
            "parameters": [_path_parameter("id", "integer")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": _json({"$ref": "#/components/schemas/ActionDone"}, "recorded on the incident"),
                "400": _error("bad input; `field` names it"),
                **_UNAUTHORIZED,
                "404": _error("no such incident"),
                "503": _error("the store cannot write now"),
            },
        }
    }


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_UNAUTHORIZED = {"401": _error("missing or wrong credentials (when auth is configured)")}
_SECURED: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "field": {"type": "string", "description": "JSON path of the offending field"},
        },
    },
    "WebhookAlert": {
        "type": "object",
        "required": ["labels", "startsAt"],
        "properties": {
            "status": {"type": "string", "enum": ["firing", "resolved"], "description": "defaults to the group's"},
            "labels": _STRING_MAP,
            "annotations": _STRING_MAP,
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time", "description": "0001-01-01T00:00:00Z: not ended"},
            "generatorURL": {"type": "string"},
            "fingerprint": {"type": "string", "maxLength": 128},
        },
    },
    "Webhook": {
        "type": "object",
        "description": "Alertmanager's webhook body, version 4. Unknown fields are accepted and ignored.",
        "required": ["alerts"],
        "properties": {
            "version": {"type": "string", "enum": ["4"]},
            "groupKey": {"type": "string"},
            "truncatedAlerts": {"type": "integer", "minimum": 0},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "receiver": {"type": "string"},
            "groupLabels": _STRING_MAP,
            "commonLabels": _STRING_MAP,
            "commonAnnotations": _STRING_MAP,
            "externalURL": {"type": "string"},
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookAlert"}},
        },
    },
    "Stored": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["stored"]},
            "alerts": {
                "type": "integer",
                "description": "alerts in the body, now on disk; retries and HA peers are deduplicated when queued",
            },
        },
    },
    "Incident": {
        "type": "object",
        "required": ["id", "title", "status", "severity", "started_at", "top_cause"],
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "severity": {"type": "string"},
            "namespace": {"type": "string"},
            "started_at": {"type": "number", "description": "unix seconds"},
            "updated_at": {"type": "number"},
            "resolved_at": {"type": ["number", "null"]},
            "top_cause": {"type": ["string", "null"]},
            "paged": {"type": "boolean"},
            "firing_alerts": {"type": "integer"},
            "alert_count": {"type": "integer"},
            "subject": {
                "description": "what the incident is about: the subject of the alert that opened it"
                " (null for incidents stored before subjects)",
                "oneOf": [{"$ref": "#/components/schemas/Subject"}, {"type": "null"}],
            },
        },
    },
    "Subject": {
        "type": "object",
        "description": "the object an alert is about, resolved from what its labels mean",
        "required": ["kind", "namespace", "name"],
        "properties": {
            "kind": {
                "type": "string",
                "description": "Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,"
                " HorizontalPodAutoscaler, PersistentVolumeClaim, PersistentVolume, PodDisruptionBudget, Node,"
                " Service, Namespace or Cluster",
            },
            "namespace": {"type": ["string", "null"], "description": "null for cluster-scoped kinds"},
            "name": {"type": "string"},
        },
    },
    "QuarantinedItem": {
        "type": "object",
        "required": ["id", "stage", "error", "received_at"],
        "properties": {
            "id": {"type": "integer"},
            "stage": {
                "type": "string",
                "description": "where it failed: expand, enrich_and_rank, suppress, route, render or record",
            },
            "error": {"type": "string", "description": "exception type and message"},
            "received_at": {"type": "number", "description": "unix seconds"},
            "quarantined_at": {"type": "number"},
            "alert_id": {"type": ["integer", "null"], "description": "null when its body never expanded"},
            "message_id": {"type": ["integer", "null"], "description": "the stored webhook body"},
            "fingerprint": {"type": ["string", "null"]},
            "alertname": {"type": ["string", "null"]},
        },
    },
    "RootCause": {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "score": {"type": "number"},
            "evidence": {"type": "array", "items": {"type": "string"}},
            # Only on a cause that is a Kubernetes object: its kind, and its namespace.
            "kind": {"type": "string"},
            "namespace": {"type": "string"},
        },
    },
    "Action": {
        "type": "object",
        "required": ["id", "kind", "by", "at", "note", "details"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["silence", "ack", "feedback"]},
            "by": {"type": "string"},
            "at": {"type": "number", "description": "Unix time"},
            "note": {"type": "string", "description": "the comment or note given"},
            "details": {
                "type": "object",
                "description": "silence: silences, duration_seconds, ends_at; feedback: verdict, cause",
            },
        },
    },
    "ActionDone": {
        "type": "object",
        "required": ["action"],
        "properties": {"action": {"$ref": "#/components/schemas/Action"}},
    },
    "SilenceRequest": {
        "type": "object",
        "description": "exactly one of incident_id, alert_id, matchers",
        "required": ["duration_seconds", "comment", "created_by"],
        "properties": {
            "incident_id": {"type": "integer", "minimum": 1},
            "alert_id": {"type": "integer", "minimum": 1},
            "matchers": {"type": "array", "items": {"type": "string"}, "description": 'e.g. alertname="X"'},
            "duration_seconds": {"type": "number", "minimum": 1, "maximum": 2592000},
            "comment": {"type": "string", "minLength": 1},
            "created_by": {"type": "string", "minLength": 1},
        },
    },
    "Silences": {
        "type": "object",
        "required": ["silences"],
        "properties": {
            "silences": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "url"],
                    "properties": {"id": {"type": "string"}, "url": {"type": "string"}},
                },
            }
        },
    },
    "Insight": {
        "type": "object",
        "required": ["alertname", "labels", "fired", "paged", "noise_score", "suggestion"],
        "properties": {
            "alertname": {"type": "string"},
            "labels": _STRING_MAP,
            "fired": {"type": "integer"},
            "paged": {"type": "integer"},
            "median_firing_seconds": {"type": ["number", "null"]},
            "resolved_within_5m": {"type": "integer"},
            "feedback": {
                "type": "object",
                "properties": {"useful": {"type": "integer"}, "noise": {"type": "integer"}},
            },
            "noise_score": {"type": "number", "minimum": 0, "maximum": 1},
            "suggestion": {
                "type": ["object", "null"],
                "properties": {
                    "rule": {"type": "object", "description": "a ready suppression.rules entry"},
                    "pages_saved": {"type": "integer"},
                    "resolved_grace_seconds": {"type": "integer"},
                },
            },
        },
    },
    "IncidentDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/Incident"},
            {
                "type": "object",
                "required": ["alerts", "enrichments", "root_causes", "decisions", "notifications"],
                "properties": {
                    "actions": {
                        "type": "array",
                        "description": "what engineers did about it (silence, ack, feedback), oldest first",
                        "items": {"$ref": "#/components/schemas/Action"},
                    },
                    "acknowledged": {
                        "type": ["object", "null"],
                        "properties": {"by": {"type": "string"}, "at": {"type": "number"}},
                    },
                    "feedback": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "by": {"type": "string"},
                                "at": {"type": "number"},
                                "note": {"type": "string"},
                                "verdict": {"type": "string", "enum": ["useful", "noise"]},
                                "cause": {"type": ["string", "null"]},
                            },
                        },
                    },
                    "alerts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "description": "the alert as the webhook spelled it, with its subject and the"
                            " causes ranked for it (its own neighbourhood's first)",
                            "properties": {
                                "subject": {"$ref": "#/components/schemas/Subject"},
                                "root_causes": {"type": "array", "items": {"$ref": "#/components/schemas/RootCause"}},
                            },
                        },
                    },
                    "enrichments": {
                        "type": "array",
                        "items": {"type": "object", "description": "per alert: source name -> status, facts, summary"},
                    },
                    "root_causes": {"type": "array", "items": {"$ref": "#/components/schemas/RootCause"}},
                    "decisions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "alert_id": {"type": "integer"},
                                "fingerprint": {"type": "string"},
                                "status": {"type": "string"},
                                "decision": {"type": "string", "enum": ["notify", "suppress"]},
                                "reason": {"type": ["string", "null"]},
                                "rule": {
                                    "type": ["string", "null"],
                                    "description": "the config entry that decided; for a symptom, the causal"
                                    " link (e.g. 'on node worker-3, which is NotReady')",
                                },
                            },
                        },
                    },
                    "notifications": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "integer"},
                                "alert_id": {"type": "integer"},
                                "channel": {"type": "string", "description": "Apprise URL, redacted"},
                                "state": {"type": "string", "enum": ["pending", "delivered", "dead"]},
                                "dead_letter": {"type": "boolean"},
                                "attempts": {"type": "integer"},
                                "last_error": {"type": ["string", "null"]},
                                "created_at": {"type": "number"},
                                "updated_at": {"type": "number"},
                            },
                        },
                    },
                },
            },
        ]
    },
}

_LIST_PARAMETERS = [
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["firing", "resolved"]}},
    {"name": "severity", "in": "query", "schema": {"type": "string"}},
    {"name": "namespace", "in": "query", "schema": {"type": "string"}},
    {"name": "text", "in": "query", "description": "in title or top cause", "schema": {"type": "string"}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
    {"name": "cursor", "in": "query", "description": "`next` of the previous page", "schema": {"type": "string"}},
]

PATHS: dict[str, Any] = {
    "/api/v1/alerts": {
        "post": {
            "summary": "Alertmanager webhook receiver",
            "security": _SECURED,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Webhook"}}},
            },
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Stored"}, "durably stored"),
                "400": _error(
                    "not JSON, not UTF-8, not the webhook schema (`field` names the problem),"
                    " or a Content-Encoding other than gzip or deflate, or one the body does not match"
                ),
                **_UNAUTHORIZED,
                "408": _error("body not received within server.body_read_timeout_seconds"),
                "413": _error("body larger than server.max_body_bytes"),
                "503": _error(
                    "queue full, store not writable, or server.max_inflight_body_bytes of bodies in flight"
                    " (with Retry-After); Alertmanager retries"
                ),
            },
        }
    },
    "/api/v1/incidents": _get(
        "Incidents, newest first",
        {
            "200": _json(
                {
                    "type": "object",
                    "properties": {
                        "incidents": {"type": "array", "items": {"$ref": "#/components/schemas/Incident"}},
                        "next": {"type": ["string", "null"]},
                    },
                },
                "one page of incidents",
            ),
            "400": _error("a bad query parameter"),
            **_UNAUTHORIZED,
        },
        parameters=_LIST_PARAMETERS,
    ),
    "/api/v1/incidents/{id}": _get(
        "One incident in full",
        {
            "200": _json({"$ref": "#/components/schemas/IncidentDetail"}, "the incident"),
            **_UNAUTHORIZED,
            "404": _error("no such incident (or pruned), or an id not in plain digits"),
        },
        parameters=[_path_parameter("id", "integer")],
    ),
    "/api/v1/silences": {
        "post": {
            "summary": "Silence an incident's firing alerts, one alert, or explicit matchers, in Alertmanager",
            "security": _SECURED,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SilenceRequest"}}},
            },
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Silences"}, "the silences created, with their UI links"),
                "400": _error("bad input; `field` names it"),
                **_UNAUTHORIZED,
                "404": _error("no such incident or alert"),
                "409": _error("no alertmanager.url configured"),
                "502": _error("Alertmanager refused the silence"),
                "503": _error("Alertmanager unreachable, or the store cannot write now"),
            },
        }
    },
    "/api/v1/incidents/{id}/ack": _action_post(
        "Acknowledge: its alerts are not paged again as repeats until it resolves",
        {
            "type": "object",
            "required": ["by"],
            "properties": {"by": {"type": "string", "minLength": 1}, "note": {"type": "string"}},
        },
    ),
    "/api/v1/incidents/{id}/feedback": _action_post(
        "Feedback: was the page useful or noise, and what was the cause",
        {
            "type": "object",
            "required": ["verdict", "by"],
            "properties": {
                "verdict": {"type": "string", "enum": ["useful", "noise"]},
                "cause": {"type": ["string", "null"], "description": "the cause an engineer confirms"},
                "by": {"type": "string", "minLength": 1},
                "note": {"type": "string"},
            },
        },
    ),
    "/api/v1/insights": _get(
        "Noise insights per alert identity, noisiest first, with suggested suppression rules",
        {
            "200": _json(
                {
                    "type": "object",
                    "required": ["alerts"],
                    "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Insight"}}},
                },
                "the insights",
            ),
            "400": _error("a bad days parameter"),
            **_UNAUTHORIZED,
        },
        parameters=[{"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 365}}],
    ),
    "/api/v1/quarantine": _get(
        "Alerts set aside because a stage failed on them (kept, never dropped), newest first",
        {
            "200": _json(
                {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/QuarantinedItem"}}
                    },
                },
                "the quarantined items",
            ),
            "400": _error("a bad limit"),
            **_UNAUTHORIZED,
        },
        parameters=[{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
    ),
    "/quarantine": _get("Dashboard: quarantined alerts", {"200": _html("HTML page"), **_UNAUTHORIZED}),
    OPENAPI_PATH: _get("This description", {"200": _json({"type": "object"}, "OpenAPI 3.1 document"), **_UNAUTHORIZED}),
    "/healthz": _get("Liveness", {"200": _json({"type": "object"}, "the process runs")}, secured=False),
    "/readyz": _get(
        "Readiness",
        {
            "200": _json({"type": "object"}, "store writable and workers running"),
            "503": _json(
                {"type": "object", "properties": {"reasons": {"type": "array", "items": {"type": "string"}}}},
                "not ready, with the reasons",
            ),
        },
        secured=False,
    ),
    "/metrics": _get(
        "Prometheus exposition, names prefixed kubebot_",
        {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        secured=False,
    ),
    "/": _get(
        "Dashboard: the incident list",
        {"200": _html("HTML page"), "400": _html("a bad filter"), **_UNAUTHORIZED},
        parameters=[p for p in _LIST_PARAMETERS if p["name"] != "limit"],
    ),
    "/incidents/{id}": _get(
        "Dashboard: one incident",
        {"200": _html("HTML page"), "404": _html("no such incident"), **_UNAUTHORIZED},
        parameters=[_path_parameter("id", "integer")],
    ),
    "/alerts/{fingerprint}": _get(
        "Dashboard: the newest incident holding the alert with this fingerprint (pages link here)",
        {
            "303": {"description": "to /incidents/{id}", "headers": {"Location": {"schema": {"type": "string"}}}},
            "404": _html("no incident holds such an alert, or a malformed fingerprint"),
            **_UNAUTHORIZED,
        },
        parameters=[_path_parameter("fingerprint", "string")],
    ),
    "/incidents/{id}/ack": _form_post(
        "Dashboard form: acknowledge (actor: the basic-auth user, else `by`)",
        {"by": {"type": "string"}, "note": {"type": "string"}},
        [],
    ),
    "/incidents/{id}/feedback": _form_post(
        "Dashboard form: feedback (actor: the basic-auth user, else `by`)",
        {
            "by": {"type": "string"},
            "verdict": {"enum": ["useful", "noise"]},
            "cause": {"type": "string"},
            "note": {"type": "string"},
        },
        ["verdict"],
    ),
    "/incidents/{id}/silence": _form_post(
        "Dashboard form: silence the incident's firing alerts in Alertmanager (actor: the basic-auth user, else `by`)",
        {"by": {"type": "string"}, "duration_seconds": {"type": "integer"}, "comment": {"type": "string"}},
        ["duration_seconds", "comment"],
    ),
    "/insights": _get(
        "Dashboard: noisiest alerts, with suggested rules as YAML",
        {"200": _html("HTML page"), "400": _html("a bad days parameter"), **_UNAUTHORIZED},
        parameters=[{"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 365}}],
    ),
    "/static/{name}": _get(
        "Dashboard stylesheet and script",
        {"200": {"description": "the file"}, "404": {"description": "no such file"}},
        parameters=[_path_parameter("name", "string")],
    ),
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "KubeBot",
            "version": "1",
            "description": "Alertmanager webhook receiver: enrichment, root-cause ranking, notification.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            # Only when configured: with no credentials set, every path is open.
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }


async def openapi_json(_: web.Request) -> web.Response:
    return web.json_response(document())
