"""The aiohttp application: intake, health, metrics, and the background workers.

State is created and closed in `app.cleanup_ctx`; nothing is read from the environment here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from base64 import b64decode
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from receiver.config import Config, StoreConfig, read_secret
from receiver.metrics import Metrics
from receiver.pipeline.builder import build_pipeline, page_links
from receiver.pipeline.render import RenderStage
from receiver.pipeline.route import RouteStage
from receiver.pipeline.sources import Sources
from receiver.pipeline.stage import Pipeline
from receiver.pipeline.suppress import Heartbeat, Memory, Suppressor, share_memory
from receiver.redact import register_secret
from receiver.service.channels import AppriseChannel, Channel, Channels, JsonLinesChannel
from receiver.service.heap import keep_settled
from receiver.service.leadership import watch_leadership
from receiver.service.outbox import Outbox, RetryPolicy
from receiver.service.priority import IntakeActivity
from receiver.service.runtime import RUNTIME, Runtime
from receiver.service.silenced_resolves import SilencedResolves
from receiver.service.silences import AlertmanagerClient
from receiver.service.supervisor import Backoff, Supervisor
from receiver.service.waiting import wait_for_wakeup
from receiver.service.watchkeeper import Watchkeeper
from receiver.service.worker import Worker
from receiver.store.base import Outcomes, Queue, Store, StoreUnavailable, SuppressionMemory
from receiver.store.postgres import PoolSettings, PostgresStore
from receiver.store.sqlite import SqliteStore
from receiver.web import actions, api, dashboard, forms
from receiver.web.edge import BodyBudget, BodyRefused, ClientGone, read_body, retry_later
from receiver.wire import PayloadError, decode_webhook

log = structlog.get_logger("kubebot.app")
Clock = Callable[[], datetime]
ALERTS_PATH = "/api/v1/alerts"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
BODY_BUDGET = web.AppKey("body_budget", BodyBudget)
# Not an HTTP answer anyone receives: how an upload the client gave up on is counted (nginx's code).
CLIENT_GONE = 499


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Credentials:
    """Bearer token and/or basic auth, as Alertmanager's http_config sends them."""

    bearer_token: str | None = None
    basic_user: str | None = None
    basic_password: str | None = None

    def __post_init__(self) -> None:
        register_secret(self.bearer_token)  # blanked in every log line from now on
        register_secret(self.basic_password)

    @property
    def enabled(self) -> bool:
        return self.bearer_token is not None or self.basic_user is not None

    def accepts(self, header: str | None) -> bool:
        if not self.enabled:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.bearer_token is not None:
            return bool(value) and hmac.compare_digest(value.encode(), self.bearer_token.encode())
        if scheme.lower() == "basic" and self.basic_user is not None:
            try:
                user, _, password = b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            # Both compared, always: the time taken says nothing about which part was wrong.
            user_ok = hmac.compare_digest(user.encode(), self.basic_user.encode())
            password_ok = hmac.compare_digest(password.encode(), (self.basic_password or "").encode())
            return user_ok and password_ok
        return False

    @classmethod
    def from_config(cls, config: Config) -> Credentials:
        return cls(
            bearer_token=read_secret(config.auth.bearer_token_file),
            basic_user=config.auth.basic.username,
            basic_password=read_secret(config.auth.basic.password_file),
        )


SourcesFactory = Callable[[Config], Awaitable[Sources]]


async def no_sources(_: Config) -> Sources:
    """Tests and benchmarks that exercise intake and delivery alone."""
    return Sources()


def create_app(
    config: Config,
    *,
    clock: Clock = utc_now,
    metrics: Metrics | None = None,
    credentials: Credentials | None = None,
    sources_factory: SourcesFactory = no_sources,
    channel: Channel | None = None,
    backoff: Backoff | None = None,
    settle_heap: bool = False,
) -> web.Application:
    """The receiver; `settle_heap` keeps the watch cache out of the cyclic GC's walks
    (receiver/service/heap.py), a choice for the process: `kubebot serve` makes it."""
    metrics = metrics or Metrics()
    credentials = credentials if credentials is not None else Credentials.from_config(config)
    app = web.Application(
        client_max_size=config.server.max_body_bytes,
        middlewares=[_edge(credentials, metrics)],
    )
    app[BODY_BUDGET] = BodyBudget(config.server.max_inflight_body_bytes)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        store = await open_store(config.store)
        pool = ThreadPoolExecutor(max_workers=config.notify.max_concurrency, thread_name_prefix="kubebot-notify")
        sources = await sources_factory(config)
        sender = channel or Channels(AppriseChannel(pool, config.notify.timeout_seconds), JsonLinesChannel(pool, clock))
        outbox = Outbox(
            store,
            sender,
            RetryPolicy.from_config(config.notify),
            metrics,
            concurrency=config.notify.max_concurrency,
            clock=clock,
        )
        memory = Memory()
        await _recall(store, store, Suppressor(config.suppression, clock, memory), clock())
        replicas = config.store.url is not None  # several may share the store: so is their memory
        if replicas:
            memory.share()
        pipeline = build_pipeline(
            config,
            sources,
            metrics,
            clock,
            memory,
            shared=store,
            acks=store.acknowledged,
            confirmed=store.confirmed_causes,
        )
        fallback = Pipeline([RouteStage(config), RenderStage(page_links(config))])
        intake = IntakeActivity()
        worker = Worker(store, pipeline, fallback, outbox, metrics, clock, intake=intake)
        heartbeat = Heartbeat(config.suppression.heartbeat, memory, clock)
        http = aiohttp.ClientSession()
        runtime = Runtime(
            config,
            metrics,
            store,
            worker,
            outbox,
            intake,
            heartbeat=heartbeat,
            alertmanager=_alertmanager(config, http),
            clock=clock,
        )
        stopping = asyncio.Event()
        # Backoff waits end at shutdown: a task resting after a fault must not hold it up.
        supervisor = Supervisor(
            metrics, backoff, sleep=lambda seconds: wait_for_wakeup(stopping, seconds), stopping=stopping
        )
        runtime.supervisor = supervisor
        watchkeeper = Watchkeeper(config, store, outbox, memory, clock)
        workers = [
            supervisor.spawn(f"worker-{i}", lambda: worker.run(stopping=stopping)) for i in range(config.server.workers)
        ]
        runtime.tasks = [
            *workers,
            supervisor.spawn("outbox", lambda: outbox.run(stopping=stopping)),
            supervisor.spawn("maintenance", lambda: _maintain(runtime, clock)),
            supervisor.spawn("watchkeeper", lambda: watchkeeper.run(leading=store.leading)),
            supervisor.spawn(
                "leadership", lambda: watch_leadership(store.leading, metrics.leader, watchkeeper.wakeup.set)
            ),
        ]
        if runtime.alertmanager is not None:
            runtime.silenced_resolves = SilencedResolves(store, runtime.alertmanager, clock, worker.wakeup.set)
            resolves = runtime.silenced_resolves
            runtime.tasks.append(supervisor.spawn("silenced-resolves", lambda: resolves.run(leading=store.leading)))
        if replicas:
            runtime.tasks.append(supervisor.spawn("memory", lambda: _share_memory(store, memory)))
        cache = sources.kubernetes.cache if sources.kubernetes is not None else None
        if settle_heap and cache is not None:
            runtime.tasks.append(supervisor.spawn("heap", lambda: keep_settled(cache)))
        metrics.queue_depth.set(store.pending_count())
        metrics.outbox_depth.set(store.outbox_count())
        app[RUNTIME] = runtime
        log.info("started", pending=store.pending_count(), outbox=store.outbox_count())
        try:
            yield
        finally:
            # Workers and the outbox finish the step they are in (within the grace period);
            # everything not finished stays in the store for the next start.
            stopping.set()
            worker.wakeup.set()
            outbox.wakeup.set()
            grace = config.server.shutdown_grace_seconds
            _, unfinished = await asyncio.wait(runtime.tasks[: len(workers) + 1], timeout=grace)
            for task in runtime.tasks:
                task.cancel()
            _, stuck = await asyncio.wait(runtime.tasks, timeout=grace)
            if unfinished or stuck:
                log.warning("tasks_cut_short", tasks=sorted(t.get_name() for t in unfinished | stuck))
            await sources.close()
            await http.close()
            await store.close()
            pool.shutdown(wait=False, cancel_futures=True)
            log.info("stopped")

    app.cleanup_ctx.append(runtime_ctx)
    app.router.add_post(ALERTS_PATH, receive_alerts)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    api.add_routes(app)
    actions.add_routes(app)
    dashboard.add_routes(app)
    forms.add_routes(app)
    return app


async def open_store(config: StoreConfig) -> Store:
    """SQLite in a file by default; PostgreSQL, shared by every replica, when a URL is set."""
    if config.url is None:
        return await SqliteStore.open(config.path, config.max_pending)
    password = read_secret(config.password_file)
    register_secret(password)  # blanked in every log line from now on
    register_secret(urlsplit(config.url).password)  # in case the URL carries one after all
    return await PostgresStore.open(
        config.url,
        password=password,
        max_pending=config.max_pending,
        lease_seconds=config.lease_seconds,
        pool=PoolSettings(size=config.pool_size, timeout_seconds=config.connect_timeout_seconds),
    )


def _alertmanager(config: Config, http: aiohttp.ClientSession) -> AlertmanagerClient | None:
    settings = config.alertmanager
    if settings.url is None:
        return None
    token = read_secret(settings.bearer_token_file)
    register_secret(token)  # blanked in every log line from now on
    return AlertmanagerClient(
        http, settings.url, token=token, external_url=settings.external_url, timeout_seconds=settings.timeout_seconds
    )


# Causes, repeats and flapping older than this are not recalled after a restart.
RECALL_LOOKBACK = timedelta(hours=24)


async def _recall(history: Outcomes, queue: Queue, suppressor: Suppressor, now: datetime) -> None:
    """Suppression memory back from the outcomes the store kept, so a restart in the middle
    of an incident neither pages its symptoms again nor forgets what was flapping."""
    since = now - RECALL_LOOKBACK
    outcomes = await history.outcomes_since(since, suppressor.memory.limit)
    unreadable = 0
    for decided_at, outcome in outcomes:
        try:
            suppressor.recall(outcome, decided_at)
        except Exception:  # one unreadable outcome must not stop the start-up
            unreadable += 1
    held = await queue.held_states()
    for fingerprint, starts_at, received in held:
        with contextlib.suppress(Exception):  # as above: memory is an optimisation, paging is not
            suppressor.recall_held(fingerprint, starts_at, received)
    log.info("suppression_recalled", outcomes=len(outcomes) - unreadable, unreadable=unreadable, held=len(held))


async def _share_memory(store: SuppressionMemory, memory: Memory, every_seconds: float = 2.0) -> None:
    """Suppression memory in step with the other replicas when no alert is being decided:
    what intake noted (the heartbeat) goes out, what the others decided comes in."""
    while True:
        await share_memory(store, memory)
        await asyncio.sleep(every_seconds)


async def _maintain(runtime: Runtime, clock: Clock, every_seconds: float = 300.0) -> None:
    """Keeps history bounded: finished alerts and deliveries past retention are removed.
    One replica at a time does it (the leader)."""
    while True:
        try:
            if not await runtime.store.leading():
                await asyncio.sleep(every_seconds)
                continue
            cutoff = clock() - timedelta(days=runtime.config.store.retention_days)
            removed = await runtime.store.prune(cutoff)
            if removed:
                log.info("pruned", alerts=removed)
        except StoreUnavailable as exc:
            log.warning("prune_failed", error=str(exc))
        await asyncio.sleep(every_seconds)


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status)


async def receive_alerts(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    started = time.perf_counter()
    runtime.intake.request_arrived()
    try:
        response = await _receive(request, runtime)
    finally:
        runtime.intake.request_answered()
    runtime.metrics.webhook_requests.labels(str(response.status)).inc()
    runtime.metrics.webhook_seconds.observe(time.perf_counter() - started)
    return response


async def _receive(request: web.Request, runtime: Runtime) -> web.Response:
    try:
        async with read_body(request, request.app[BODY_BUDGET], runtime.config.server) as raw:
            return await _store(raw, runtime)
    except BodyRefused as exc:
        response = _error(exc.status, exc.message)
        if exc.status == 503:
            retry_later(response)
        response.force_close()  # the rest of the body, if any, is not wanted
        return response
    except ClientGone as exc:
        log.info("upload_aborted", path=request.path, reason=str(exc))
        return web.Response(status=CLIENT_GONE)


async def _store(raw: bytes, runtime: Runtime) -> web.Response:
    try:
        webhook = decode_webhook(raw)
    except PayloadError as exc:
        return _error(400, exc.problem, exc.field)
    except UnicodeDecodeError as exc:  # msgspec checks UTF-8 inside strings only as it decodes them
        return _error(400, f"body is not valid UTF-8 (byte {exc.start})")
    alerts = len(webhook.alerts)
    try:
        await runtime.store.accept(raw, alerts, datetime.now(UTC))
    except StoreUnavailable as exc:
        log.error("store_unavailable", error=str(exc), group_key=webhook.group_key)
        return _error(503, f"cannot store alerts now, retry later: {exc}")
    runtime.heartbeat.saw(alert.labels for alert in webhook.alerts)  # duplicates too: each is proof of life
    firing = webhook.firing_count()
    runtime.metrics.received_firing.inc(firing)
    runtime.metrics.received_resolved.inc(alerts - firing)
    runtime.metrics.queue_depth.set(runtime.store.pending_count())
    runtime.worker.wakeup.set()
    if webhook.truncated_alerts:
        log.warning("truncated_group", group_key=webhook.group_key, truncated=webhook.truncated_alerts)
    # Debug, not info: each alert's own line (alert_processed) follows, and at storm
    # rates one line per request cost intake more than its durable write.
    log.debug("webhook_stored", group_key=webhook.group_key, alerts=alerts)
    return web.Response(body=b'{"status": "stored", "alerts": %d}' % alerts, content_type="application/json")


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    reasons = [f"{t.get_name()} stopped" for t in runtime.tasks if t.done()]
    if runtime.supervisor is not None:
        reasons += runtime.supervisor.problems()
    try:
        await asyncio.wait_for(runtime.store.check_writable(), 2.0)
    except (StoreUnavailable, TimeoutError) as exc:
        reasons.append(f"store not writable: {exc or 'timed out'}")
    if reasons:
        return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_page(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    runtime.metrics.queue_depth.set(runtime.store.pending_count())
    runtime.metrics.outbox_depth.set(runtime.store.outbox_count())
    return web.Response(
        body=generate_latest(runtime.metrics.registry),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _edge(credentials: Credentials, metrics: Metrics) -> Any:
    """Every request passes here: credentials first, and no answer is ever a 500.

    One middleware rather than two: each layer costs intake a coroutine per request.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS and not _accepts(credentials, request.headers.get("Authorization")):
            return _unauthorized(request, credentials, metrics)
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            # Nothing was acknowledged: 503 makes Alertmanager retry instead of giving up.
            log.exception("request_failed", path=request.path)
            if request.path == ALERTS_PATH:
                metrics.webhook_requests.labels("503").inc()
            return _error(503, "internal error, retry later")

    return middleware


def _accepts(credentials: Credentials, header: str | None) -> bool:
    try:
        return credentials.accepts(header)
    except UnicodeError:  # raw bytes that are not UTF-8 (aiohttp keeps them as surrogates): never ours
        return False


def _unauthorized(request: web.Request, credentials: Credentials, metrics: Metrics) -> web.Response:
    response = _error(401, "missing or wrong credentials")
    # Basic first when configured: it is the one a browser can answer (the dashboard).
    challenge = 'Basic realm="kubebot"' if credentials.basic_user else 'Bearer realm="kubebot"'
    response.headers["WWW-Authenticate"] = challenge
    if request.path == ALERTS_PATH:
        metrics.webhook_requests.labels("401").inc()
    return response
