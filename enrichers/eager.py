"""`gather` that runs each coroutine at once, as far as it gets without waiting.

With the watch cache synced, most of an enrichment's steps finish without ever waiting
(the cache answers at once), yet `asyncio.gather` gives each its own Task and a turn of
the event loop: in a storm that bookkeeping was the enricher's main cost. Here a step that
finishes at once costs a function call; one that has to wait continues in a Task of its
own, exactly where it stopped, so the steps still wait concurrently (Python 3.12's eager
tasks, for 3.11).

Only for steps that do not use `asyncio.timeout`, `current_task()` or an aiohttp request
(which times out through the current task) before their first wait: their first part runs
in the caller's task. The Kubernetes reads and Prometheus queries run in Tasks of their
own, so those enrichers qualify; sources that call aiohttp directly do not.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine, Generator, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


async def gather(*steps: Coroutine[Any, Any, Any]) -> list[Any]:
    """The steps' results in order; the first failure is raised, as `asyncio.gather`
    does, and the other steps still run (those waiting, on their own)."""
    results: list[Any] = []
    waiting: list[tuple[int, asyncio.Future[Any]]] = []
    failure: BaseException | None = None
    for i, step in enumerate(steps):
        results.append(None)
        try:
            results[i], task = _start(step)
        except BaseException as exc:
            failure = failure or exc
            continue
        if task is not None:
            waiting.append((i, task))
    if not waiting:  # the usual case: no gather, no Future
        if failure is not None:
            raise failure
        return results
    together = asyncio.gather(*(task for _, task in waiting))
    if failure is not None:
        together.add_done_callback(_consume_exception)
        raise failure
    for (i, _), value in zip(waiting, await together, strict=True):
        results[i] = value
    return results


def start(steps: Iterable[Coroutine[Any, Any, None]]) -> list[asyncio.Future[None]]:
    """Run each step until it first waits; the Tasks that continue those that had to.

    For steps that keep their failures to themselves: one raised at once is raised here.
    """
    waiting = []
    for step in steps:
        _, task = _start(step)
        if task is not None:
            waiting.append(task)
    return waiting


def future(step: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Run `step` until it first waits: a done Future with its result when it never had
    to (no Task), else the Task that continues it. For steps that do not raise."""
    result, task = _start(step)
    if task is not None:
        return task
    done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    done.set_result(result)
    return done


def _start(step: Coroutine[Any, Any, Any]) -> tuple[Any, asyncio.Future[Any] | None]:
    """(result, None) for a step that finished at once, else (None, its Task)."""
    try:
        pending = step.send(None)
    except StopIteration as done:
        return done.value, None
    task = asyncio.ensure_future(_Continued(step, pending))
    # Closed once done: a step cancelled before its Task first ran still unwinds.
    task.add_done_callback(functools.partial(_close, step))
    return None, task


def _close(step: Coroutine[Any, Any, Any], _: asyncio.Future[Any]) -> None:
    step.close()


def _consume_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _Continued:
    """A started coroutine, continued by the Task that awaits this from where it yielded."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, thrown in by the Task
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return done.value
                continue
            try:
                pending = coro.send(None)
            except StopIteration as done:
                return done.value
