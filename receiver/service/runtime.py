"""What the request handlers share, created at start-up and closed at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from receiver.config import Config
from receiver.metrics import Metrics
from receiver.pipeline.suppress import Heartbeat
from receiver.service.outbox import Outbox
from receiver.service.priority import IntakeActivity
from receiver.service.silenced_resolves import SilencedResolves
from receiver.service.silences import AlertmanagerClient
from receiver.service.supervisor import Supervisor
from receiver.service.worker import Worker
from receiver.store.base import Store


@dataclass
class Runtime:
    """Everything the handlers need, created at start-up and closed at shutdown."""

    config: Config
    metrics: Metrics
    store: Store
    worker: Worker
    outbox: Outbox
    intake: IntakeActivity
    heartbeat: Heartbeat
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    supervisor: Supervisor | None = None  # restarts the tasks; says which keep failing
    alertmanager: AlertmanagerClient | None = None  # where silences are created, if configured
    silenced_resolves: SilencedResolves | None = None  # resolves Alertmanager mutes, with alertmanager
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


RUNTIME = web.AppKey("runtime", Runtime)
