"""Configuration: one YAML file, validated once, with environment overrides.

`load(text, environ)` is pure: it parses, applies `KUBEBOT_<SECTION>__<KEY>` overrides,
fills defaults and reports every problem with its key path. `load_file` does the I/O.
Secrets stay as file paths here (`*_file` keys); `read_secret` reads them at start-up.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from receiver.matchers import Matcher, MatcherError, parse_matcher

ENV_PREFIX = "KUBEBOT_"
DEFAULT_SINK_URL = "jsonl://data/notifications.jsonl"


class ConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # Alertmanager groups can exceed aiohttp's 1 MiB default.
    max_body_bytes: int = 10 * 1024 * 1024
    workers: int = 4
    shutdown_grace_seconds: float = 5.0
    # A body that stalls mid-way is answered 408 after this long (receiver/edge.py).
    body_read_timeout_seconds: float = 30.0
    # A connection with no request in progress is closed after this long, from its start.
    idle_timeout_seconds: float = 30.0
    # Connections beyond this are closed as soon as they are accepted.
    max_connections: int = 512
    # Webhook bodies held in memory at once, all requests together; past it 503 + Retry-After.
    max_inflight_body_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class BasicAuthConfig:
    username: str | None = None
    password_file: str | None = None


@dataclass(frozen=True)
class AuthConfig:
    bearer_token_file: str | None = None
    basic: BasicAuthConfig = field(default_factory=BasicAuthConfig)


@dataclass(frozen=True)
class StoreConfig:
    path: str = "./data/kubebot.db"
    # Past this many unprocessed alerts, intake answers 503 so Alertmanager keeps them.
    max_pending: int = 100_000
    retention_days: float = 7.0


@dataclass(frozen=True)
class KubernetesConfig:
    mode: Literal["auto", "in-cluster", "incluster", "kubeconfig", "off"] = "auto"
    kubeconfig: str | None = None
    host: str | None = None
    token_file: str | None = None
    log_lines: int = 50
    events_window_seconds: float = 3600.0
    call_timeout_seconds: float = 3.0
    max_concurrency: int = 8


@dataclass(frozen=True)
class PrometheusConfig:
    url: str | None = None
    window_seconds: float = 1800.0


@dataclass(frozen=True)
class JaegerConfig:
    url: str | None = None
    ui_url: str | None = None  # for trace links; default: url


@dataclass(frozen=True)
class TempoConfig:
    url: str | None = None
    trace_url_template: str | None = None  # e.g. a Grafana Explore URL with {trace_id}
    tenant: str | None = None  # X-Scope-OrgID


@dataclass(frozen=True)
class LokiConfig:
    url: str | None = None
    tenant: str | None = None


@dataclass(frozen=True)
class TracesConfig:
    jaeger: JaegerConfig = field(default_factory=JaegerConfig)
    tempo: TempoConfig = field(default_factory=TempoConfig)


@dataclass(frozen=True)
class LogsConfig:
    loki: LokiConfig = field(default_factory=LokiConfig)


@dataclass(frozen=True)
class EnrichmentConfig:
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class GraphConfig:
    static_edges: tuple[tuple[str, str], ...] = ()
    refresh_seconds: float = 60.0


@dataclass(frozen=True)
class SignalConfig:
    name: str
    query: str


@dataclass(frozen=True)
class RcaConfig:
    service_label: str = "service"
    signals: tuple[SignalConfig, ...] = ()  # empty: the built-in kube-prometheus-stack set
    step_seconds: float = 30.0
    max_causes: int = 5


@dataclass(frozen=True)
class SuppressionRule:
    name: str
    matchers: tuple[Matcher, ...]
    action: Literal["drop", "digest"] = "drop"
    expires: datetime | None = None


@dataclass(frozen=True)
class MaintenanceWindow:
    name: str
    matchers: tuple[Matcher, ...]
    start: datetime | None = None
    end: datetime | None = None
    days: tuple[str, ...] = ()
    # Weekly windows: "HH:MM" in `timezone`.
    from_: str | None = None
    to: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True)
class FlappingConfig:
    max_changes: int = 4
    window_seconds: float = 1800.0


@dataclass(frozen=True)
class HeartbeatConfig:
    matchers: tuple[Matcher, ...] = ()
    missing_after_seconds: float = 600.0


@dataclass(frozen=True)
class SuppressionConfig:
    rules: tuple[SuppressionRule, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    flapping: FlappingConfig = field(default_factory=FlappingConfig)
    resolved_grace_seconds: float = 0.0
    symptom_hold_seconds: float = 0.0
    repeat_interval_seconds: float = 4 * 3600.0
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    # How often each route gets a digest of what was suppressed for it; 0: never.
    digest_interval_seconds: float = 3600.0


@dataclass(frozen=True)
class Route:
    matchers: tuple[Matcher, ...]
    urls: tuple[str, ...]
    name: str = ""
    # Like Alertmanager's `continue`: also try the routes after this one.
    continue_: bool = False


@dataclass(frozen=True)
class NotifyConfig:
    routes: tuple[Route, ...] = ()
    default_urls: tuple[str, ...] = (DEFAULT_SINK_URL,)
    timeout_seconds: float = 10.0
    max_attempts: int = 8
    backoff_initial_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    max_concurrency: int = 8


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    traces: TracesConfig = field(default_factory=TracesConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    enrichment: EnrichmentConfig = field(default_factory=EnrichmentConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    rca: RcaConfig = field(default_factory=RcaConfig)
    suppression: SuppressionConfig = field(default_factory=SuppressionConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)


# Domain checks the types alone cannot express: (key path, predicate, problem).
_CHECKS: tuple[tuple[str, typing.Callable[[Config], bool], str], ...] = (
    ("server.port", lambda c: 0 <= c.server.port <= 65535, "must be 0..65535"),
    ("server.max_body_bytes", lambda c: c.server.max_body_bytes >= 1024, "must be >= 1024"),
    ("server.workers", lambda c: 1 <= c.server.workers <= 256, "must be 1..256"),
    ("store.max_pending", lambda c: c.store.max_pending >= 1, "must be >= 1"),
    ("enrichment.timeout_seconds", lambda c: c.enrichment.timeout_seconds > 0, "must be > 0"),
    ("notify.max_attempts", lambda c: c.notify.max_attempts >= 1, "must be >= 1"),
    ("notify.timeout_seconds", lambda c: c.notify.timeout_seconds > 0, "must be > 0"),
    ("notify.max_concurrency", lambda c: c.notify.max_concurrency >= 1, "must be >= 1"),
    (
        "auth.basic",
        lambda c: (c.auth.basic.username is None) == (c.auth.basic.password_file is None),
        "username and password_file go together",
    ),
)

# YAML keys that are Python keywords.
_KEY_ALIASES = {"from": "from_", "continue": "continue_"}


def load(text: str, environ: Mapping[str, str]) -> Config:
    """Parse and validate a config document; raise ConfigError listing every problem."""
    try:
        raw = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"$: not valid YAML: {exc}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["$: expected a mapping of sections"])
    problems: list[str] = []
    _apply_env_overrides(raw, environ, problems)
    config = _convert(Config, raw, "", problems)
    if not problems:
        problems.extend(f"{path}: {what}" for path, ok, what in _CHECKS if not ok(config))
    if problems:
        raise ConfigError(problems)
    assert isinstance(config, Config)
    return config


def load_file(path: str | Path | None, environ: Mapping[str, str]) -> Config:
    text = Path(path).read_text(encoding="utf-8") if path else ""
    return load(text, environ)


def read_secret(path: str | None) -> str | None:
    """Secrets come from files (mounted Kubernetes Secrets); trailing newlines are not part."""
    if path is None:
        return None
    return Path(path).read_text(encoding="utf-8").rstrip("\r\n")


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> None:
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if any(not part for part in path):
            problems.append(f"{name}: empty key in environment override")
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"{'.'.join(path)}: cannot override inside a non-mapping ({name})")
                break
            node = child
        else:
            node[path[-1]] = value


def _convert(kind: Any, value: Any, path: str, problems: list[str]) -> Any:
    """Turn YAML data into `kind`, appending a problem per mismatch instead of raising."""
    where = path or "$"
    origin = typing.get_origin(kind)
    if kind is Matcher:
        if not isinstance(value, str):
            problems.append(f"{where}: expected a matcher string")
            return None
        try:
            return parse_matcher(value)
        except MatcherError as exc:
            problems.append(f"{where}: {exc}")
            return None
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _convert_dataclass(kind, value, path, problems)
    if origin in (Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _convert(inner[0], value, path, problems)
    if origin is Literal:
        allowed = typing.get_args(kind)
        if value not in allowed:
            problems.append(f"{where}: must be one of {', '.join(map(str, allowed))}")
        return value
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list")
            return ()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]", problems) for i, v in enumerate(value))
        if len(value) != len(args):
            problems.append(f"{where}: expected a list of {len(args)} items")
            return ()
        return tuple(_convert(a, v, f"{path}[{i}]", problems) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    return _convert_scalar(kind, value, where, problems)


def _convert_scalar(kind: Any, value: Any, where: str, problems: list[str]) -> Any:
    if kind is datetime:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                return parsed
        problems.append(f"{where}: expected an RFC 3339 time with a zone, e.g. 2027-01-01T00:00:00Z")
        return None
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is bool and isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    problems.append(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return None


def _convert_dataclass(kind: type[Any], value: Any, path: str, problems: list[str]) -> Any:
    where = path or "$"
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping")
        return kind() if _all_defaulted(kind) else None
    hints = typing.get_type_hints(kind)
    fields = {f.name: f for f in dataclasses.fields(kind)}
    values: dict[str, Any] = {}
    for key, item in value.items():
        name = _KEY_ALIASES.get(str(key), str(key))
        child = f"{path}.{key}" if path else str(key)
        if name not in fields:
            problems.append(f"{child}: unknown key")
            continue
        values[name] = _convert(hints[name], item, child, problems)
    missing = [
        name
        for name, f in fields.items()
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    for name in missing:
        problems.append(f"{path}.{name}: required" if path else f"{name}: required")
    if missing or any(v is None and not _optional(hints[k]) for k, v in values.items()):
        return kind() if _all_defaulted(kind) else None
    return kind(**values)


def _optional(kind: Any) -> bool:
    return typing.get_origin(kind) in (Union, types.UnionType) and type(None) in typing.get_args(kind)


def _all_defaulted(kind: type[Any]) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(kind)
    )
