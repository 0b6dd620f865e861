"""Workers take stored alerts, run them through the pipeline and record the outcome.

The outcome and the deliveries it implies are written in one transaction, so an alert
killed mid-way is processed again after a restart, and one already finished is never
notified twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

import structlog

from receiver.metrics import Metrics
from receiver.pipeline.stage import Pipeline, StageFailed, Work
from receiver.service.outbox import Outbox
from receiver.service.priority import IntakeActivity
from receiver.service.waiting import keep_working
from receiver.store.base import Finished, NewDelivery, Quarantine, Queue, QueuedAlert, StoreUnavailable

log = structlog.get_logger("kubebot.worker")


class Worker:
    def __init__(
        self,
        store: Queue,
        pipeline: Pipeline,
        fallback: Pipeline,
        outbox: Outbox,
        metrics: Metrics,
        clock: Callable[[], datetime],
        batch_size: int = 64,  # enough for a whole Alertmanager group, so it pages once
        intake: IntakeActivity | None = None,
        quiet_batch_size: int = 128,
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._fallback = fallback
        self._outbox = outbox
        self._metrics = metrics
        self._clock = clock
        # While intake is busy a claim stays small, so that each batch hands the loop back
        # to intake soon; once it is quiet, a claim takes twice as many: with sources that
        # answer in tens of milliseconds a worker mostly waits, and more groups wait at once.
        self._batch_size = batch_size
        self._quiet_batch_size = max(batch_size, quiet_batch_size)
        self._intake = intake or IntakeActivity()
        self.wakeup = asyncio.Event()
        self._unfinished: set[int] = set()

    async def run(self, poll_seconds: float = 1.0, stopping: asyncio.Event | None = None) -> None:
        await keep_working(self._step, self.wakeup, poll_seconds, "worker", stopping)

    async def _step(self) -> int:
        if self._unfinished:
            await self._store.release(sorted(self._unfinished))
            self._unfinished.clear()
        waiting = time.monotonic()
        await self._intake.wait_for_turn()
        started = time.monotonic()
        if started > waiting:
            self._metrics.workers_paused.inc(started - waiting)
        processed = await self.process_available()
        self._intake.worked(time.monotonic() - started)
        return processed

    async def process_available(self) -> int:
        size = self._batch_size if self._intake.busy() else self._quiet_batch_size
        claimed = await self._store.claim(size, self._clock())
        self._metrics.alerts_duplicate.inc(self._store.take_duplicate_count())
        self._metrics.quarantined.labels("expand").inc(self._store.take_quarantined_count())
        if not claimed:
            return 0
        by_group: dict[str, list[QueuedAlert]] = defaultdict(list)
        for queued in claimed:
            by_group[queued.group.group_key].append(queued)
        outcomes = await asyncio.gather(
            *(self._process_group(items) for items in by_group.values()), return_exceptions=True
        )
        for items, outcome in zip(by_group.values(), outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    self._unfinished.update(q.id for q in items)
                    raise outcome
                if isinstance(outcome, StoreUnavailable):
                    # Claimed but not finished: handed back to the queue once the store writes again.
                    self._unfinished.update(q.id for q in items)
                    continue
                log.error("group_failed", error=f"{type(outcome).__name__}: {outcome}"[:300])
                await self._one_by_one(items)
        self._metrics.queue_depth.set(self._store.pending_count())
        return len(claimed)

    async def _one_by_one(self, items: list[QueuedAlert]) -> None:
        """A group no pipeline got through: each alert alone, sent plainly, so the one that
        poisons it is set aside (quarantined, with its error) and the others still page.
        Released instead, it would come back, and fail, forever."""
        poisoned: list[Quarantine] = []
        for queued in items:
            try:
                await self._finish([queued], await self._fallback.run([self._work(queued)]))
            except StoreUnavailable:
                self._unfinished.add(queued.id)
            except Exception as exc:
                stage = exc.stage if isinstance(exc, StageFailed) else "record"
                log.exception("alert_quarantined", alert_id=queued.id, fingerprint=queued.alert.fingerprint, at=stage)
                error = f"{type(exc).__name__}: {exc}"[:500]
                poisoned.append(Quarantine(queued.id, stage, error, queued.alert.fingerprint, queued.alert.name))
        if poisoned:
            try:
                await self._store.quarantine(poisoned, self._clock())
            except StoreUnavailable:
                self._unfinished.update(p.alert_id for p in poisoned if p.alert_id is not None)
                return
            for item in poisoned:
                self._metrics.quarantined.labels(item.stage).inc()

    @staticmethod
    def _work(queued: QueuedAlert) -> Work:
        return Work(alert=queued.alert, group=queued.group, received_at=queued.received_at, held=queued.held)

    async def _process_group(self, items: list[QueuedAlert]) -> None:
        started = time.monotonic()
        batch = [self._work(q) for q in items]
        try:
            results = await self._pipeline.run(batch)
        except Exception:
            # A bug in a stage must not swallow a page: send it plain, unenriched.
            log.exception("pipeline_failed", group_key=batch[0].group.group_key)
            results = await self._fallback.run(batch)
        await self._finish(items, results)
        log.debug("group_processed", alerts=len(items), seconds=time.monotonic() - started)

    async def _finish(self, items: list[QueuedAlert], results: list[Work]) -> None:
        finished: list[Finished] = []
        for queued, work in zip(items, results, strict=True):
            if work.decision.action == "hold" and work.decision.hold_until is not None:
                await self._store.defer(queued.id, work.decision.hold_until)
                log.info("alert_held", fingerprint=work.alert.fingerprint, until=work.decision.hold_until.isoformat())
                continue
            message = work.message
            deliveries = (
                tuple(NewDelivery(url, message.title, message.body, message.notify_type) for url in work.routes)
                if message is not None
                else ()
            )
            finished.append(Finished(queued.id, work.outcome(), deliveries))
        # All at once: a group's message names every alert in it, so none may be replayed alone.
        await self._store.finish_many(finished, self._clock())
        for queued, work in zip(items, results, strict=True):
            if work.decision.action == "hold":
                continue
            if work.decision.action == "suppress":
                self._metrics.suppressed.labels(work.decision.reason or "unknown").inc()
            log.info(
                "alert_processed",
                fingerprint=work.alert.fingerprint,
                group_key=work.group.group_key,
                alertname=work.alert.name,
                status=work.alert.status,
                decision=work.decision.action,
                reason=work.decision.reason,
                sent_with=work.sent_with,
                deliveries=len(work.routes) if work.message is not None else 0,
            )
            self._metrics.processing_seconds.observe(max(0.0, (self._clock() - queued.received_at).total_seconds()))
        if any(work.message for work in results):
            self._outbox.wakeup.set()
