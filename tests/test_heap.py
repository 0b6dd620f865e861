"""Long-lived objects out of the cyclic GC's walks (receiver/service/heap.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator

import pytest

from receiver.service.heap import YOUNG_COLLECTION_EVERY, collect_young_less_often, keep_settled, settle


class Held:
    """A stand-in watch cache: its size, and the objects it has taken in so far."""

    def __init__(self, size: int) -> None:
        self.synced = asyncio.Event()
        self.size = size
        self.new = size  # the first list

    async def wait_synced(self) -> None:
        await self.synced.wait()

    def objects(self) -> int:
        return self.size

    def taken_in(self) -> int:
        return self.new

    def arriving(self, *steps: int) -> Callable[[float], Awaitable[None]]:
        """A sleep after which the next of `steps` new objects have arrived; Stop after the last."""
        left = iter(steps)

        async def sleep(_: float) -> None:
            step = next(left, None)
            if step is None:
                raise Stop
            self.new += step

        return sleep


class Stop(Exception):
    pass


async def test_settles_once_synced_then_only_after_a_quarter_is_new() -> None:
    held = Held(5_000)
    settled: list[int] = []
    sleep = held.arriving(500, 500, 300, 0)  # new objects per check: 500, 1,000, then 1,300 of 5,000
    task = asyncio.create_task(keep_settled(held, settle=lambda: settled.append(held.new), sleep=sleep))
    await asyncio.sleep(0)
    assert settled == []  # nothing is worth freezing before the first list
    held.synced.set()
    with pytest.raises(Stop):
        await task
    assert settled == [5_000, 6_300]


async def test_a_small_cache_settles_again_only_after_a_thousand_new_objects() -> None:
    held = Held(100)
    held.synced.set()
    settled: list[int] = []
    with pytest.raises(Stop):
        await keep_settled(held, settle=lambda: settled.append(held.new), sleep=held.arriving(400, 400, 400))
    assert settled == [100, 1_300]


@pytest.fixture
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic GC frees it


@pytest.mark.usefixtures("thawed")
def test_settling_freezes_what_lives_and_frees_a_frozen_cycle_at_the_next_settling() -> None:
    node = Node()
    ref = weakref.ref(node)
    settle()
    assert not any(obj is node for obj in gc.get_objects())  # no collection walks it now
    del node
    gc.collect()
    assert ref() is not None  # frozen garbage stays through ordinary collections...
    settle()
    assert ref() is None  # ...until the next settling thaws and collects first


def test_young_collections_run_less_often_and_a_higher_setting_is_kept() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        collect_young_less_often()
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, 10, 10)
        gc.set_threshold(50_000, 5, 5)
        collect_young_less_often()
        assert gc.get_threshold() == (50_000, 5, 5)
    finally:
        gc.set_threshold(*before)
