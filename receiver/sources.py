"""Which enrichment sources run, decided from the config at start-up.

Each configured source is created here and returns its closer; an unconfigured source is
simply absent, so the pipeline never special-cases "not configured".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from enrichers.base import Enricher
from receiver.config import Config

Closer = Callable[[], Awaitable[None]]


async def build_enrichers(config: Config) -> tuple[list[Enricher], list[Closer]]:
    enrichers: list[Enricher] = []
    closers: list[Closer] = []
    return enrichers, closers
