"""Configuration: one YAML file, validated once, with environment overrides.

`load(text, environ)` is pure: it parses, applies `KUBEBOT_<SECTION>__<KEY>` overrides,
fills defaults and reports every problem with its key path. `load_file` does the I/O.
Secrets stay as file paths here (`*_file` keys); `read_secret` reads them at start-up.
`check_environment` checks what the config points at on this machine (files, the store's
directory); `check-config` and `serve` run both, so `serve` never starts on what would
fail later.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from enrichers.base import DEFAULT_BUDGET_SECONDS
from enrichers.kubernetes.enricher import KubernetesSettings
from enrichers.telemetry.http import DEFAULT_WINDOW
from enrichers.telemetry.signals import DEFAULT_SERVICE_LABEL
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
    # A body that stalls mid-way is answered 408 after this long (receiver/web/edge.py).
    body_read_timeout_seconds: float = 30.0
    # A connection with no request in progress is closed after this long, from its start.
    idle_timeout_seconds: float = 30.0
    # Connections beyond this are closed as soon as they are accepted.
    max_connections: int = 512
    # Webhook bodies held in memory at once, all requests together; past it 503 + Retry-After.
    max_inflight_body_bytes: int = 64 * 1024 * 1024
    # Where people reach KubeBot (its dashboard), for links in pages; None: no links.
    external_url: str | None = None


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
    # PostgreSQL shared by every replica (postgresql://USER@HOST:PORT/DB); when set, `path`
    # is not used. The password comes from password_file, not from the URL.
    url: str | None = None
    password_file: str | None = None
    # Claimed work a replica that died held goes back to the queue after this long.
    lease_seconds: float = 60.0
    pool_size: int = 10
    # Waiting for (or making) a database connection longer than this answers 503.
    connect_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class KubernetesConfig:
    mode: Literal["auto", "in-cluster", "incluster", "kubeconfig", "off"] = "auto"
    kubeconfig: str | None = None
    host: str | None = None
    token_file: str | None = None
    # What the enricher reads: its own defaults (sources.kubernetes_settings maps them).
    log_lines: int = KubernetesSettings.log_lines
    events_window_seconds: float = KubernetesSettings.events_window_seconds
    call_timeout_seconds: float = KubernetesSettings.call_timeout_seconds
    max_concurrency: int = KubernetesSettings.max_concurrency
    max_log_reads: int = KubernetesSettings.max_log_reads
    watch: bool = KubernetesSettings.watch  # a list+watch cache; false: every read goes to the API


@dataclass(frozen=True)
class AlertmanagerConfig:
    """The Alertmanager API that silences are created in (API v2)."""

    url: str | None = None
    bearer_token_file: str | None = None
    # Where people open Alertmanager's UI, for silence links; default: url.
    external_url: str | None = None
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class PrometheusConfig:
    url: str | None = None
    # Looked at before the alert started, by every telemetry source.
    window_seconds: float = DEFAULT_WINDOW.total_seconds()


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
    timeout_seconds: float = DEFAULT_BUDGET_SECONDS


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
    service_label: str = DEFAULT_SERVICE_LABEL
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
    alertmanager: AlertmanagerConfig = field(default_factory=AlertmanagerConfig)
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    traces: TracesConfig = field(default_factory=TracesConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    enrichment: EnrichmentConfig = field(default_factory=EnrichmentConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    rca: RcaConfig = field(default_factory=RcaConfig)
    suppression: SuppressionConfig = field(default_factory=SuppressionConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)


# The sane range (min, max, both inclusive) of every number in the config, by key path
# (`[]` stands for any list index). A value outside it, NaN or infinite is an error
# naming the key; a test checks that every numeric field has a line here.
BOUNDS: dict[str, tuple[float, float]] = {
    "server.port": (0, 65535),
    "server.max_body_bytes": (1024, 256 * 1024 * 1024),
    "server.workers": (1, 256),
    "server.shutdown_grace_seconds": (0, 600),
    "server.body_read_timeout_seconds": (0.1, 3600),
    "server.idle_timeout_seconds": (0.1, 3600),
    "server.max_connections": (1, 65535),
    "server.max_inflight_body_bytes": (1024, 4 * 1024 * 1024 * 1024),
    "store.max_pending": (1, 10_000_000),
    "store.retention_days": (0.01, 3650),
    "store.lease_seconds": (5, 3600),
    "store.pool_size": (1, 256),
    "store.connect_timeout_seconds": (0.5, 120),
    "kubernetes.log_lines": (0, 10_000),
    # Up to ~30 years: replays of old fixtures look far back; timedelta holds far more.
    "kubernetes.events_window_seconds": (1, 1e9),
    "kubernetes.call_timeout_seconds": (0.1, 300),
    "kubernetes.max_concurrency": (1, 256),
    "kubernetes.max_log_reads": (1, 256),
    "alertmanager.timeout_seconds": (0.1, 300),
    "prometheus.window_seconds": (60, 7 * 86400),
    "enrichment.timeout_seconds": (0.1, 300),
    "graph.refresh_seconds": (1, 86400),
    "rca.step_seconds": (1, 3600),
    "rca.max_causes": (1, 100),
    "suppression.flapping.max_changes": (1, 100),
    "suppression.flapping.window_seconds": (1, 7 * 86400),
    "suppression.resolved_grace_seconds": (0, 86400),
    "suppression.symptom_hold_seconds": (0, 86400),
    "suppression.repeat_interval_seconds": (0, 30 * 86400),
    "suppression.heartbeat.missing_after_seconds": (1, 7 * 86400),
    "suppression.digest_interval_seconds": (0, 7 * 86400),
    "notify.timeout_seconds": (0.1, 300),
    # Large values mean "keep trying" (a dead letter only after days); the doubling is capped.
    "notify.max_attempts": (1, 100_000),
    "notify.backoff_initial_seconds": (0.01, 3600),
    "notify.backoff_max_seconds": (0.1, 86400),
    "notify.max_concurrency": (1, 256),
}

# Times (rule expiry, one-off maintenance) are kept in UTC, within these.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)
# The same names as receiver.pipeline.suppress.DAYS, which imports this module.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")  # ours, fixed, fullmatch: linear
# Prometheus refuses range queries of more points than this per series.
MAX_POINTS_PER_SERIES = 11_000
# Secret files hold a token, not a document: more is a wrong path (or /dev/zero).
MAX_SECRET_BYTES = 64 * 1024

# Domain checks across keys, which bounds alone cannot express: (key path, predicate, problem).
_CHECKS: tuple[tuple[str, typing.Callable[[Config], bool], str], ...] = (
    (
        "auth.basic",
        lambda c: (c.auth.basic.username is None) == (c.auth.basic.password_file is None),
        "username and password_file go together",
    ),
    (
        "store.url",
        lambda c: c.store.url is None or c.store.url.startswith(("postgresql://", "postgres://")),
        "must be a postgresql:// URL",
    ),
    (
        "store.lease_seconds",
        lambda c: c.store.lease_seconds > 2 * c.notify.timeout_seconds,
        "must be more than twice notify.timeout_seconds (a send must end within its lease)",
    ),
    (
        "alertmanager.url",
        lambda c: c.alertmanager.url is None or _is_http_url(c.alertmanager.url),
        "must be an http:// or https:// URL",
    ),
    (
        "alertmanager.external_url",
        lambda c: c.alertmanager.external_url is None or _is_http_url(c.alertmanager.external_url),
        "must be an http:// or https:// URL",
    ),
    (
        "alertmanager.bearer_token_file",
        lambda c: c.alertmanager.bearer_token_file is None or c.alertmanager.url is not None,
        "needs alertmanager.url",
    ),
    (
        "server.external_url",
        lambda c: c.server.external_url is None or _is_http_url(c.server.external_url),
        "must be an http:// or https:// URL",
    ),
    (
        "server.max_inflight_body_bytes",
        lambda c: c.server.max_inflight_body_bytes >= c.server.max_body_bytes,
        "must be at least server.max_body_bytes (else large bodies get in only one at a time)",
    ),
    (
        "notify.backoff_initial_seconds",
        lambda c: c.notify.backoff_initial_seconds <= c.notify.backoff_max_seconds,
        "must not exceed notify.backoff_max_seconds",
    ),
    (
        "suppression.digest_interval_seconds",
        lambda c: c.suppression.digest_interval_seconds == 0 or c.suppression.digest_interval_seconds >= 60,
        "must be 0 (off) or at least 60",
    ),
    (
        "rca.step_seconds",
        lambda c: c.prometheus.window_seconds / c.rca.step_seconds <= MAX_POINTS_PER_SERIES,
        f"prometheus.window_seconds / rca.step_seconds must be at most {MAX_POINTS_PER_SERIES} points",
    ),
)


def _is_http_url(text: str) -> bool:
    scheme, sep, rest = text.partition("://")
    return bool(sep) and scheme in ("http", "https") and bool(rest) and not any(c.isspace() for c in text)


# YAML keys that are Python keywords.
_KEY_ALIASES = {"from": "from_", "continue": "continue_"}
_FIELD_KEYS = {name: key for key, name in _KEY_ALIASES.items()}


def load(text: str, environ: Mapping[str, str]) -> Config:
    """Parse and validate a config document; raise ConfigError listing every problem."""
    raw = _parse_yaml(text)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["$: expected a mapping of sections"])
    problems: list[str] = []
    _apply_env_overrides(raw, environ, problems)
    config = _convert(Config, raw, "", problems)
    if not problems:
        problems.extend(_bound_problems(config, "", ""))
    if not problems:
        problems.extend(_maintenance_problems(config))
        problems.extend(f"{path}: {what}" for path, ok, what in _CHECKS if not ok(config))
    if problems:
        raise ConfigError(problems)
    assert isinstance(config, Config)
    return config


def _parse_yaml(text: str) -> Any:
    """The document's data. A problem names the line and column only: the line itself may
    hold a password or a URL with credentials, so it is never echoed."""
    if not text.strip():
        return {}
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is None:
            raise ConfigError(["$: not valid YAML"]) from None
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        opened = exc.context_mark
        if opened is not None and opened.line != mark.line:
            where += f" (in what opens at line {opened.line + 1})"
        raise ConfigError([f"{_section_at(text, mark.line)}: not valid YAML at {where}"]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0))
        problem = f"not valid YAML at line {line + 1}: a character YAML does not allow"
        raise ConfigError([f"{_section_at(text, line)}: {problem}"]) from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError):
        # e.g. a timestamp such as 2027-13-45, or nesting too deep for the parser
        raise ConfigError(["$: not valid YAML: a value cannot be read"]) from None


def _section_at(text: str, line: int) -> str:
    """The top-level section a broken line is in, if it is one of ours; else "$". Only
    our own section names are ever shown, nothing else from the text."""
    sections = {f.name for f in dataclasses.fields(Config)}
    for candidate in reversed(text.splitlines()[: line + 1]):
        name = candidate.split(":", 1)[0]
        if name and not name[0].isspace() and not name.startswith("#"):
            return name if name in sections else "$"
    return "$"


def load_file(path: str | Path | None, environ: Mapping[str, str]) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8") if path else ""
    except UnicodeDecodeError as exc:
        raise ConfigError([f"$: not UTF-8 text (byte {exc.start})"]) from None
    return load(text, environ)


def read_secret(path: str | None) -> str | None:
    """Secrets come from files (mounted Kubernetes Secrets); trailing newlines are not part.
    An empty secret would let an empty credential in: it is an error, never "no auth"."""
    if path is None:
        return None
    problem = _secret_problem(path)
    if problem is not None:
        raise ConfigError([f"{path}: {problem}"])
    return Path(path).read_text(encoding="utf-8").rstrip("\r\n")


def check_environment(config: Config) -> list[str]:
    """What the config refers to on this machine, each problem with its key path: secret
    files readable and not empty, other files readable, the store's directory writable or
    creatable. Separate from `load`, which stays pure."""
    problems: list[str] = []
    secrets = {
        "auth.bearer_token_file": config.auth.bearer_token_file,
        "auth.basic.password_file": config.auth.basic.password_file,
        "kubernetes.token_file": config.kubernetes.token_file,
        "store.password_file": config.store.password_file,
        "alertmanager.bearer_token_file": config.alertmanager.bearer_token_file,
    }
    for key, secret in secrets.items():
        problem = _secret_problem(secret) if secret is not None else None
        if problem is not None:
            problems.append(f"{key}: {problem}")
    if config.kubernetes.kubeconfig is not None:
        problem = _readable_problem(Path(config.kubernetes.kubeconfig).expanduser())
        if problem is not None:
            problems.append(f"kubernetes.kubeconfig: {problem}")
    problem = _store_problem(config.store.path) if config.store.url is None else None
    if problem is not None:
        problems.append(f"store.path: {problem}")
    return problems


def _readable_problem(path: Path) -> str | None:
    try:
        if not path.is_file():
            return f"{path} is not a file" if path.exists() else f"{path} does not exist"
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return None


def _secret_problem(name: str) -> str | None:
    path = Path(name)
    problem = _readable_problem(path)
    if problem is not None:
        return problem
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if len(data) > MAX_SECRET_BYTES:
        return f"{path} is larger than {MAX_SECRET_BYTES} bytes, not a secret"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"{path} is not UTF-8 text"
    if not text.strip():
        return f"{path} is empty or only whitespace: it would accept an empty credential"
    return None


def _store_problem(name: str) -> str | None:
    """The store opens the file and creates its directory: both must be possible."""
    if name == ":memory:":
        return None
    path = Path(name)
    if path.is_dir():
        return f"{path} is a directory, not a database file"
    if path.exists():
        return None if os.access(path, os.R_OK | os.W_OK) else f"{path} is not writable"
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create {path.parent}: {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK) or _read_only_mount(existing):
        return f"cannot create {path}: {existing} is not writable"
    return None


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def numeric_keys(kind: type[Any] = Config, prefix: str = "") -> Iterator[str]:
    """The key path of every int or float field below `kind` (`[]` for list items)."""
    hints = typing.get_type_hints(kind)
    for f in dataclasses.fields(kind):
        yield from _numeric_keys_of(hints[f.name], _join(prefix, _yaml_key(f.name)))


def _numeric_keys_of(kind: Any, path: str) -> Iterator[str]:
    args = typing.get_args(kind)
    if kind in (int, float):
        yield path
    elif dataclasses.is_dataclass(kind) and isinstance(kind, type):
        yield from numeric_keys(kind, path)
    elif typing.get_origin(kind) is tuple:
        for arg in {a for a in args if a is not Ellipsis}:
            yield from _numeric_keys_of(arg, f"{path}[]")
    elif typing.get_origin(kind) in (Union, types.UnionType):
        for arg in args:
            yield from _numeric_keys_of(arg, path)


def _bound_problems(value: Any, path: str, key: str) -> Iterator[str]:
    """Every number outside its BOUNDS line, with its key path (real list indexes)."""
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            name = _yaml_key(f.name)
            yield from _bound_problems(getattr(value, f.name), _join(path, name), _join(key, name))
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from _bound_problems(item, f"{path}[{i}]", f"{key}[]")
    elif isinstance(value, int | float) and not isinstance(value, bool) and key in BOUNDS:
        low, high = BOUNDS[key]
        if not (math.isfinite(value) and low <= value <= high):
            yield f"{path}: must be between {_number(low)} and {_number(high)}"


def _maintenance_problems(config: Config) -> Iterator[str]:
    """Values `receiver.pipeline.suppress.in_window` turns into zones and clock times."""
    for i, window in enumerate(config.suppression.maintenance):
        where = f"suppression.maintenance[{i}]"
        if window.start is not None and window.end is not None and window.start >= window.end:
            yield f"{where}.start: must be before end"
        if window.timezone not in _time_zones():
            yield f"{where}.timezone: must be an IANA time zone name such as Europe/Berlin or UTC"
        for key, value in (("from", window.from_), ("to", window.to)):
            if value is not None and not _CLOCK_TIME.fullmatch(value):
                yield f'{where}.{key}: must be a time HH:MM from 00:00 to 23:59 (quote it: "02:00")'
        if (window.from_ is None) != (window.to is None):
            yield f"{where}: from and to go together"
        if window.from_ is not None and window.from_ == window.to:
            yield f"{where}.to: must differ from `from`"
        for j, day in enumerate(window.days):
            if day not in WEEKDAYS:
                yield f"{where}.days[{j}]: must be one of {', '.join(WEEKDAYS)}"


@cache
def _time_zones() -> frozenset[str]:
    # Names only, from the installed tz database: never a path to open.
    return frozenset(zoneinfo.available_timezones())


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _yaml_key(field_name: str) -> str:
    return _FIELD_KEYS.get(field_name, field_name)


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
        except (yaml.YAMLError, ValueError, OverflowError, RecursionError):
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
        return _convert_time(value, where, problems)
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


def _convert_time(value: Any, where: str, problems: list[str]) -> datetime | None:
    parsed = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.append(f"{where}: expected an RFC 3339 time with a zone, e.g. 2027-01-01T00:00:00Z")
        return None
    try:
        # Kept in UTC: later comparisons and sums never overflow near year 9999.
        utc = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST_TIME <= utc <= LATEST_TIME:
        problems.append(f"{where}: must be between {EARLIEST_TIME:%Y-%m-%d} and {LATEST_TIME:%Y-%m-%d} (UTC)")
        return None
    return utc


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
