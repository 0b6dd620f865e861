"""The enrich stage: every source for every alert of a batch, concurrently, on budget."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime

from enrichers.base import EnrichContext, Enricher, enrich_batch
from receiver.metrics import Metrics
from receiver.pipeline.stage import Work


class EnrichStage:
    """Every source for every alert of the batch at once, each within the time budget."""

    def __init__(
        self,
        enrichers: Sequence[Enricher],
        timeout_seconds: float,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._enrichers = enrichers
        self._timeout = timeout_seconds
        self._metrics = metrics
        self._clock = clock

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        if not self._enrichers or not batch:
            return list(batch)
        ctx = EnrichContext(
            group=batch[0].group,
            now=self._clock(),
            timeout_seconds=self._timeout,
            alerts=tuple(w.alert for w in batch),
        )
        results = await enrich_batch(self._enrichers, ctx.alerts, ctx)
        for found in results:
            for name, enrichment in found.items():
                self._metrics.enrichment_seconds.labels(name).observe(enrichment.elapsed_seconds)
                if enrichment.status == "unavailable":
                    self._metrics.enrichment_failures.labels(name).inc()
        return [dataclasses.replace(w, enrichment=r) for w, r in zip(batch, results, strict=True)]
