"""Admission: fewer turns start while the event loop lags, all of them again once it is calm."""

from __future__ import annotations

import asyncio
import time

import pytest

from chatpay.worker.admission import Admission


async def hold(admission: Admission, release: asyncio.Event, started: list[int], i: int) -> None:
    if await admission.acquire():
        started.append(i)
        await release.wait()
        admission.release()


async def test_up_to_the_ceiling_runs_at_once_and_the_rest_wait_their_turn() -> None:
    admission = Admission(3)
    release, started = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(admission, release, started, i)) for i in range(5)]
    await asyncio.sleep(0.01)
    assert started == [0, 1, 2] and admission.running == 3
    release.set()
    await asyncio.gather(*tasks)
    assert started == [0, 1, 2, 3, 4] and admission.running == 0


async def test_a_lagging_loop_admits_fewer_and_a_calm_one_all_again() -> None:
    admission = Admission(64, floor=4, lag_limit=0.05)
    for _ in range(40):
        assert await admission.acquire()
    admission.observe(0.30)  # the loop woke 300 ms late: CPU is the limit
    assert admission.limit == 30  # three quarters of the 40 running
    assert admission.cuts == 1
    for _ in range(40):
        admission.release()
    admission.observe(0.20)  # still lagging, with nothing running: never below the floor
    assert admission.limit == 4
    for _ in range(32):
        admission.observe(0.001)
    assert admission.limit == 64
    assert admission.summary()["admission_cuts"] == 2


async def test_waiting_turns_start_when_the_lag_passes() -> None:
    admission = Admission(8, floor=1, lag_limit=0.05, tick=0.01)
    running = [await admission.acquire() for _ in range(2)]
    admission.observe(0.5)  # cut to the floor: one of the two running
    waiter = asyncio.create_task(admission.acquire())
    await asyncio.sleep(0.02)
    assert not waiter.done()
    watcher = asyncio.create_task(admission.watch())  # the calm loop raises the limit, and the waiter starts
    assert await asyncio.wait_for(waiter, 2) is True
    admission.close()
    await asyncio.wait_for(watcher, 2)
    assert running == [True, True] and admission.running == 3


async def test_close_wakes_every_waiter_with_no() -> None:
    admission = Admission(1)
    assert await admission.acquire()
    waiters = [asyncio.create_task(admission.acquire()) for _ in range(3)]
    await asyncio.sleep(0.01)
    admission.close()
    assert await asyncio.gather(*waiters) == [False, False, False]
    assert await admission.acquire() is False


async def test_a_waiter_cancelled_after_its_grant_hands_the_place_on() -> None:
    admission = Admission(1)
    assert await admission.acquire()
    first = asyncio.create_task(admission.acquire())
    second = asyncio.create_task(admission.acquire())
    await asyncio.sleep(0.01)
    admission.release()  # grants the first waiter...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 1) is True
    assert admission.running == 1


async def test_the_watcher_measures_a_blocked_loop_as_lag() -> None:
    admission = Admission(16, floor=2, lag_limit=0.05, tick=0.01)
    for _ in range(16):
        await admission.acquire()
    watcher = asyncio.create_task(admission.watch())
    await asyncio.sleep(0.02)
    time.sleep(0.15)  # noqa: ASYNC251 (on purpose) a turn hogging the CPU: the watcher's next wake-up is 150 ms late
    await asyncio.sleep(0.02)
    admission.close()
    await watcher
    assert admission.cuts >= 1 and admission.limit < 16


def test_a_ceiling_below_one_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ceiling must be at least 1, got 0"):
        Admission(0)
