"""Admission: how many turns one worker process lets run at once, lowered while its CPU is the limit.

A turn mostly waits, so a process keeps many in flight (``--concurrency``). But when the turns'
own CPU work fills the process's core, more turns in flight only queue on the event loop: every
turn, whichever business it is for, waits behind every other, and a flooding business's backlog
becomes everyone's latency. Work that waits in Redis is served fairly (the least busy business
first); work that waits in the event loop is not.

So the process watches its event loop's lag (how late a short sleep wakes up) and, like TCP's
congestion window, cuts the number of turns it admits when the lag passes :data:`LAG_LIMIT` and
raises it step by step when the loop is calm again. A slot waits for admission *before* it takes
an update from Redis, so the backlog stays in Redis, where the next free slot goes to the business
with the fewest turns running.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque

LAG_LIMIT = 0.02
"""Event-loop lag (seconds) past which the process admits fewer turns. A turn of the offline engine
takes a few milliseconds of CPU, so a calm loop lags a few ms. With 3 worker processes on 2 CPUs
and one business flooding (tests/production/test_fleet.py), 128 admitted turns let another
business's p95 reply time rise from 0.59 to 1.40 s (x2.4); a 50 ms limit gave x1.13 on this
machine but x2.2 in a CI run; 20 ms gave x0.99 to x1.3 over seven runs (x1.49 with a CPU hog
beside them), while one process still serves about 220 turns/s (``bench/bench_fleet.py``)."""

TICK = 0.02
"""How often (seconds) the lag is sampled: 50 wakeups a second, a negligible cost."""

CUT = 0.75
"""On lag, admit this share of the turns running now (a multiplicative decrease, as TCP's)."""


class Admission:
    """A bound on running turns, between ``floor`` and ``ceiling``, that follows the event loop's lag."""

    def __init__(self, ceiling: int, *, floor: int = 4, lag_limit: float = LAG_LIMIT, tick: float = TICK) -> None:
        if ceiling < 1:
            raise ValueError(f"ceiling must be at least 1, got {ceiling}")
        self.ceiling = ceiling
        self.floor = max(1, min(floor, ceiling))
        self.lag_limit = lag_limit
        self.tick = tick
        self.limit = ceiling
        self.running = 0
        self.cuts = 0
        self._step = max(1, math.ceil(ceiling / 32))  # back to the ceiling in 32 calm ticks (0.64 s)
        self._waiting: deque[asyncio.Future[bool]] = deque()
        self._closed = False
        self._limited = 0  # ticks spent below the ceiling, for the worker's closing log line
        self._ticks = 0

    async def acquire(self) -> bool:
        """Wait until one more turn may run and count it as running (True), or until :meth:`close` (False).

        One event loop, so no lock: a grant is the waker counting the turn as running for the waiter.
        """
        if self._closed:
            return False
        if self.running < self.limit and not self._waiting:
            self.running += 1
            return True
        granted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(granted)
        try:
            return await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled() and granted.result():
                self.release()  # granted, then cancelled before it could run: hand the place on
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(granted)
            raise

    def release(self) -> None:
        self.running -= 1
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self.running < self.limit and not self._closed:
            granted = self._waiting.popleft()
            if not granted.done():
                self.running += 1
                granted.set_result(True)

    def close(self) -> None:
        """Admit nothing more: every waiting :meth:`acquire` returns False."""
        self._closed = True
        while self._waiting:
            granted = self._waiting.popleft()
            if not granted.done():
                granted.set_result(False)

    def summary(self) -> dict[str, float]:
        """What admission did: how often it cut, and the share of time it held turns below the ceiling."""
        return {"admission_cuts": self.cuts, "admission_limited_share": round(self._limited / max(self._ticks, 1), 3)}

    async def watch(self) -> None:
        """Sample the loop's lag every :attr:`tick` and move the limit, until :meth:`close`."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            started = loop.time()
            await asyncio.sleep(self.tick)
            self.observe(loop.time() - started - self.tick)
            self._grant()

    def observe(self, lag: float) -> None:
        """One lag sample: cut the limit below what runs now when it is over :attr:`lag_limit`, else raise it."""
        self._ticks += 1
        self._limited += self.limit < self.ceiling
        if lag > self.lag_limit:
            cut = max(self.floor, int(self.running * CUT))
            if cut < self.limit:
                self.limit = cut
                self.cuts += 1
        else:
            self.limit = min(self.ceiling, self.limit + self._step)
