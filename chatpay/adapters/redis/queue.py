"""A reliable, per-shopper ordered queue of raw Telegram updates on Redis.

The webhook (or any handler) ``LPUSH``es raw updates onto the list ``Q`` (``chatpay_queue``).
Workers then move them, never copy them, so an update leaves Redis only when its turn is
done (see :mod:`chatpay.adapters.redis.scripts` for the keys):

1. Routing: a worker blocks on ``BRPOPLPUSH Q Q:staging`` (moves keep their order), then one
   Lua script drains staging and ``Q`` oldest first into one lane per Telegram user, and
   pre-checkout queries into ``Q:fast``. Any worker may route; the order of a user's
   updates is the order they arrived in.
2. Lanes: a free worker slot takes a lane id with ``BRPOPLPUSH Q:ready Q:w:<me>:lanes`` and
   works on the lane's head. Holding the lane is the thread lease: no other worker sees that
   user's updates until the head is acknowledged (or dead-lettered, or failed) and the lane
   handed back, so two updates of one user never run at once and keep their order, while
   different users' lanes run in parallel on every worker.
3. Failure: every worker refreshes ``Q:hb:<me>`` (a key with a TTL); any worker hands the
   lanes and pre-checkouts of a worker whose heartbeat expired back to ``Q:ready``/``Q:fast``.
   A head that failed ``max_failures`` times, or was started ``max_attempts`` times without
   finishing (the worker kept dying), goes to ``Q:dead`` with the reason.

Redis errors become :class:`~chatpay.core.errors.QueueError`; callers retry with backoff.
The client must be made with ``decode_responses=True`` and should not retry commands on its
own (a retried script could run twice); fakeredis needs its ``lua`` extra.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatpay.adapters.redis import scripts
from chatpay.core.errors import QueueError
from chatpay.core.ports import Delivery

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_FAILURES = 3
MAX_ATTEMPTS = 10
ROUTE_BATCH = 200


@dataclass(frozen=True)
class Receipt:
    """Where a delivery came from: a user's lane (``lane``), or the pre-checkout list (``fast``).

    ``owner`` is the list that proves the holder still owns it (the fence for commits).
    """

    kind: Literal["lane", "fast"]
    lane: str
    owner: str
    failures: int = 0
    last_error: str = ""


async def _queue_call(operation: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except RedisError as exc:
        raise QueueError(f"queue {operation} failed: {type(exc).__name__}") from exc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RedisQueue:
    """The :class:`~chatpay.core.ports.Queue` port on Redis, with lanes, heartbeats and dead letters.

    Args:
        client: ``redis.asyncio.Redis`` or ``fakeredis.FakeAsyncRedis`` with ``decode_responses=True``.
        name: the list raw updates are pushed to (``CHATPAY_QUEUE``).
        worker_id: this worker's name in heartbeats and logs.
        heartbeat_ttl: seconds without a heartbeat after which a worker counts as dead.
        max_failures: failed turns after which an update is dead-lettered.
        max_attempts: starts without an outcome (the worker died) after which it is dead-lettered.
    """

    def __init__(
        self, client: Redis, name: str = "chatpay_queue", *, worker_id: str = "worker",
        heartbeat_ttl: float = 15.0, max_failures: int = MAX_FAILURES, max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.client: Any = client
        self.name = name
        self.base_id = worker_id
        self.worker_id = worker_id
        self.heartbeat_ttl = heartbeat_ttl
        self.max_failures = max_failures
        self.max_attempts = max_attempts
        self.dead_key = f"{name}:dead"
        self._k = {s: f"{name}:{s}" for s in ("staging", "ready", "fast", "workers", "attempts", "failures",
                                               "errors", "fastattempts")}
        self._generation = 0
        # Lanes slots of this process work on, counted: a lane handed back by one slot may be
        # taken by another before the first one's bookkeeping runs.
        self._active: Counter[str] = Counter()
        self._suspects: set[str] = set()
        self._scripts = {
            name: client.register_script(source) for name, source in (
                ("route", scripts.ROUTE), ("begin", scripts.BEGIN), ("finish", scripts.FINISH),
                ("release", scripts.RELEASE), ("reap", scripts.REAP), ("heartbeat", scripts.HEARTBEAT),
                ("finish_fast", scripts.FINISH_FAST),
            )
        }

    # ------------------------------------------------------------------ keys

    def lane_key(self, lane: str) -> str:
        return f"{self.name}:lane:{lane}"

    @property
    def owned_key(self) -> str:
        return f"{self.name}:w:{self.worker_id}:lanes"

    @property
    def inflight_key(self) -> str:
        return f"{self.name}:w:{self.worker_id}:fast"

    def fence(self, delivery: Delivery) -> tuple[str, str]:
        """``(list, member)`` that stays true only while this worker owns ``delivery``."""
        receipt: Receipt = delivery.receipt
        return receipt.owner, receipt.lane if receipt.kind == "lane" else delivery.raw

    def _lane_keys(self, receipt: Receipt) -> list[str]:
        k = self._k
        return [receipt.owner, self.lane_key(receipt.lane), k["ready"], k["attempts"], k["failures"], k["errors"]]

    def _dead_entry(self, delivery: Delivery, reason: str) -> str:
        return json.dumps({"raw": delivery.raw, "reason": reason, "worker": self.worker_id,
                           "attempts": delivery.attempts, "at": _now()})

    def _untrack(self, lane: str) -> None:
        self._active[lane] -= 1
        if self._active[lane] <= 0:
            del self._active[lane]

    # ------------------------------------------------------------------ intake

    async def push(self, raw: str) -> None:
        """``LPUSH`` one raw update, as the webhook does."""
        await _queue_call("push", self.client.lpush(self.name, raw))

    async def route(self, limit: int = ROUTE_BATCH) -> int:
        """Sort up to ``limit`` waiting updates into lanes, oldest first; returns how many."""
        k = self._k
        routed = await _queue_call("route", self._scripts["route"](
            keys=[self.name, k["staging"], k["ready"], k["fast"]], args=[f"{self.name}:lane:", limit]))
        return int(routed)

    async def wait_inbound(self, timeout: float) -> bool:  # noqa: ASYNC109 (a server-side block)
        """Block until an update arrives (moving it to staging, in order); False on timeout."""
        moved = await _queue_call("wait", self.client.brpoplpush(self.name, self._k["staging"], timeout))
        return moved is not None

    # ------------------------------------------------------------------ lanes

    async def reserve(self, timeout: float) -> Delivery | None:  # noqa: ASYNC109 (the Queue port)
        """Take a free lane and return its head, or None when no lane is ready within ``timeout``."""
        lane = await _queue_call("reserve", self.client.brpoplpush(self._k["ready"], self.owned_key, timeout))
        if lane is None:
            return None
        self._active[lane] += 1
        owner = self.owned_key
        k = self._k
        try:
            result = await _queue_call("begin", self._scripts["begin"](
                keys=[owner, self.lane_key(lane), k["attempts"], k["failures"], k["errors"]], args=[lane]))
        except QueueError:
            self._untrack(lane)  # still in our list: recover_orphans hands it back
            raise
        if result[0] != "ok":
            self._untrack(lane)
            return None
        _, raw, attempts, failures, error = result
        receipt = Receipt("lane", lane, owner, int(failures), str(error or ""))
        delivery = Delivery(str(raw), receipt, int(attempts))
        if delivery.attempts > self.max_attempts:
            reason = f"started {delivery.attempts - 1} times without finishing (the worker kept dying)"
            log.error("update dead-lettered", extra={"lane": lane, "reason": reason})
            await self.dead_letter(delivery, reason)
            return None
        return delivery

    async def ack(self, delivery: Delivery) -> bool:
        """Remove a finished update and hand its lane (or pre-checkout) back.

        Returns False when this worker no longer owned it (it was reaped meanwhile).
        """
        return await self._finish(delivery, "")

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move an update to ``<queue>:dead`` with ``reason``; the rest of its lane flows on."""
        await self._finish(delivery, self._dead_entry(delivery, reason))

    async def fail(self, delivery: Delivery, error: str) -> bool:
        """Record a failed try; dead-letter after ``max_failures``. Returns True when dead-lettered."""
        receipt: Receipt = delivery.receipt
        failures = receipt.failures + 1
        if failures >= self.max_failures:
            await self.dead_letter(delivery, f"failed {failures} times; last error: {error}")
            return True
        if receipt.kind == "fast":
            await self._finish_fast(delivery, "", retry=True)
            return False
        try:
            await _queue_call("fail", self._scripts["release"](keys=self._lane_keys(receipt),
                                                               args=[receipt.lane, error[:500], "0"]))
        finally:
            self._untrack(receipt.lane)
        return False

    async def release(self, delivery: Delivery) -> None:
        """Hand an update back untried (shutting down, or Redis failed mid-way); it runs again."""
        receipt: Receipt = delivery.receipt
        if receipt.kind == "fast":
            await self._finish_fast(delivery, "", retry=True)
            return
        try:
            await _queue_call("release", self._scripts["release"](keys=self._lane_keys(receipt),
                                                                  args=[receipt.lane, "", "1"]))
        finally:
            self._untrack(receipt.lane)

    async def _finish(self, delivery: Delivery, dead: str) -> bool:
        receipt: Receipt = delivery.receipt
        if receipt.kind == "fast":
            return await self._finish_fast(delivery, dead, retry=False)
        try:
            done = await _queue_call("ack", self._scripts["finish"](
                keys=[*self._lane_keys(receipt), self.dead_key], args=[receipt.lane, delivery.raw, dead]))
        finally:
            self._untrack(receipt.lane)
        return bool(done)

    # ------------------------------------------------------------------ pre-checkout fast path

    async def reserve_fast(self, timeout: float) -> Delivery | None:  # noqa: ASYNC109 (a server-side block)
        """Take the next pre-checkout query; these never wait behind the lanes."""
        owner = self.inflight_key
        raw = await _queue_call("reserve fast", self.client.brpoplpush(self._k["fast"], owner, timeout))
        if raw is None:
            return None
        attempts = int(await _queue_call("fast attempts", self.client.hincrby(self._k["fastattempts"], raw, 1)))
        delivery = Delivery(str(raw), Receipt("fast", "", owner, attempts - 1), attempts)
        if attempts > self.max_failures:
            await self.dead_letter(delivery, f"failed {attempts - 1} times")
            return None
        return delivery

    async def _finish_fast(self, delivery: Delivery, dead: str, *, retry: bool) -> bool:
        receipt: Receipt = delivery.receipt
        done = await _queue_call("finish fast", self._scripts["finish_fast"](
            keys=[receipt.owner, self._k["fast"], self.dead_key, self._k["fastattempts"]],
            args=[delivery.raw, dead, "1" if retry else "0"]))
        return bool(done)

    # ------------------------------------------------------------------ liveness

    async def heartbeat(self, *, register: bool = False) -> bool:
        """Refresh this worker's heartbeat (registering it first when ``register``).

        When another worker reaped this one meanwhile (its heartbeat had expired), the
        worker takes a fresh id and returns False: its in-flight updates now belong to
        others, and their fenced commits and acknowledgements will be refused.
        """
        ttl_ms = max(int(self.heartbeat_ttl * 1000), 100)
        hb = f"{self.name}:hb:{self.worker_id}"
        alive = await _queue_call("heartbeat", self._scripts["heartbeat"](
            keys=[self._k["workers"], hb], args=[self.worker_id, ttl_ms, "1" if register else "0"]))
        if int(alive):
            return True
        self._generation += 1
        old, self.worker_id = self.worker_id, f"{self.base_id}.{self._generation}"
        self._active.clear()
        self._suspects.clear()
        log.error("worker was presumed dead and reaped; continuing under a new id",
                  extra={"worker": old, "new_worker": self.worker_id})
        await self.heartbeat(register=True)
        return False

    async def reap(self) -> list[str]:
        """Hand back the lanes and pre-checkouts of workers whose heartbeat expired."""
        k = self._k
        ids = await _queue_call("reap", self._scripts["reap"](
            keys=[k["workers"], k["ready"], k["fast"]], args=[f"{self.name}:", ""]))
        for worker in ids:
            log.warning("reclaimed the updates of a dead worker", extra={"dead_worker": worker})
        return [str(i) for i in ids]

    async def retire(self) -> None:
        """Hand back everything this worker still holds and deregister (clean shutdown)."""
        k = self._k
        await _queue_call("retire", self._scripts["reap"](
            keys=[k["workers"], k["ready"], k["fast"]], args=[f"{self.name}:", self.worker_id]))
        self._active.clear()

    async def recover_orphans(self) -> list[str]:
        """Hand back lanes in this worker's list that no slot works on (a reply lost to a reset).

        A lane counts as orphaned only when seen idle on two calls in a row, so a lane that a
        slot has just taken is never handed back by mistake.
        """
        owned = set(await _queue_call("owned", self.client.lrange(self.owned_key, 0, -1)))
        idle = owned - set(self._active)
        orphans = idle & self._suspects
        self._suspects = idle - orphans
        for lane in orphans:
            await _queue_call("recover", self._scripts["release"](
                keys=self._lane_keys(Receipt("lane", lane, self.owned_key)), args=[lane, "", "0"]))
            log.warning("handed back an orphaned lane", extra={"lane": lane})
        return sorted(orphans)

    # ------------------------------------------------------------------ inspection

    async def depth(self) -> dict[str, int]:
        """How many updates wait where: inbound, staging, in lanes, fast, dead; and ready lanes."""
        k = self._k
        lanes = 0
        async for key in self.client.scan_iter(match=f"{self.name}:lane:*", count=500):
            lanes += int(await self.client.llen(key))
        pipe = self.client.pipeline(transaction=False)
        for key in (self.name, k["staging"], k["ready"], k["fast"], self.dead_key):
            pipe.llen(key)
        inbound, staging, ready, fast, dead = await _queue_call("depth", pipe.execute())
        return {"inbound": int(inbound), "staging": int(staging), "lanes": lanes, "ready_lanes": int(ready),
                "fast": int(fast), "dead": int(dead)}

    async def dead_letters(self) -> list[dict[str, Any]]:
        """The dead letters, newest first, as ``{raw, reason, worker, attempts, at}``."""
        raws = await _queue_call("dead letters", self.client.lrange(self.dead_key, 0, -1))
        return [json.loads(r) for r in raws]

    async def workers(self) -> set[str]:
        return {str(w) for w in await _queue_call("workers", self.client.smembers(self._k["workers"]))}
