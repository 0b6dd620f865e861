"""A replica shows on `kubebot_leader` whether it leads, and starts the leader's work at once
when it takes over (the end-to-end handover between processes: test_replicas_processes)."""

from __future__ import annotations

import asyncio

from receiver.metrics import Metrics
from receiver.service.leadership import watch_leadership


async def test_the_gauge_follows_each_answer_and_each_takeover_wakes_the_leaders_work_once() -> None:
    answers = [False, True, True, False, True]
    metrics = Metrics()
    gauge_before_each_look: list[float | None] = []
    takeovers_at: list[int] = []  # how many looks had been answered when `taken` was called
    done = asyncio.Event()

    async def leading() -> bool:
        gauge_before_each_look.append(metrics.registry.get_sample_value("kubebot_leader"))
        if len(gauge_before_each_look) > len(answers):
            done.set()
            await asyncio.Event().wait()  # no more answers: rest here until cancelled
        return answers[len(gauge_before_each_look) - 1]

    task = asyncio.create_task(
        watch_leadership(leading, metrics.leader, lambda: takeovers_at.append(len(gauge_before_each_look)), 0)
    )
    await done.wait()
    task.cancel()
    assert gauge_before_each_look == [0.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert takeovers_at == [2, 5]
