"""A reliable, per-shopper ordered queue of raw Telegram updates on Redis.

The webhook (or any handler) ``LPUSH``es raw updates onto the list ``Q``, one per business:
``queue_name(CHATPAY_QUEUE, business_id)``, e.g. ``chatpay_queue:{demo}``. Every other key is
``Q:<something>``, so all of a business's queue keys carry its Redis Cluster hash tag
``{<business>}`` (one slot, one node per script) and two businesses share nothing.
Workers then move updates, never copy them, so an update leaves Redis only when its turn is
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
4. Dead letters: the newest ``MAX_DEAD`` per business are kept; an operator lists them
   (:meth:`RedisQueue.dead_letters`), queues them again (:meth:`RedisQueue.requeue_dead`) or
   drops them (:meth:`RedisQueue.purge_dead`).

Redis errors become :class:`~chatpay.core.errors.QueueError`; callers retry with backoff.
The client (``redis.asyncio.Redis`` or ``RedisCluster``, see :func:`chatpay.adapters.redis.connect`)
must be made with ``decode_responses=True`` and should not retry commands on its own (a
retried script could run twice); fakeredis needs its ``lua`` extra.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatpay.adapters.redis import scripts
from chatpay.adapters.redis.stores import hash_tag
from chatpay.core.errors import QueueError
from chatpay.core.ports import Delivery

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_FAILURES = 3
FORMER_ID_SECONDS = 60.0  # far longer than any blocking take (the worker's poll, 1 s) issued under an old id
MAX_ATTEMPTS = 10
ROUTE_BATCH = 200
MAX_DEAD = 10_000
"""Dead letters kept per business; the oldest is dropped when one more arrives."""


def queue_name(base: str, business_id: str) -> str:
    """The inbound list of ``business_id``'s queue: ``<base>:{<business>}``, e.g. ``chatpay_queue:{demo}``.

    The webhook ``LPUSH``es a business's updates onto exactly this list, and :class:`RedisQueue`
    derives every other key from it. The business is the Redis Cluster hash tag (encoded as in
    :func:`chatpay.adapters.redis.stores.hash_tag`, the same tag as the business's state keys).

    Raises:
        ValueError: ``base`` is empty or holds a brace, or ``business_id`` is empty.
    """
    if not base or "{" in base or "}" in base:
        raise ValueError(f"a queue name must be non-empty and hold no braces: {base!r}")
    return f"{base}:{hash_tag(business_id)}"


def _has_hash_tag(name: str) -> bool:
    """True when Redis Cluster hashes ``name`` by a tag: its first ``{`` and the next ``}``, not empty."""
    opening = name.find("{")
    return opening >= 0 and name.find("}", opening + 1) > opening + 1


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


def _age(at: Any, now: datetime) -> int | None:
    """Whole seconds since the ISO 8601 time ``at`` (None when it cannot be read)."""
    try:
        when = datetime.fromisoformat(str(at))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int((now - when).total_seconds()))


def _positions(positions: list[int] | None) -> list[Any]:
    """The scripts' ARGV for a choice of dead letters: ``['1']`` for all, else ``['0', *positions]``."""
    if positions is None:
        return ["1"]
    if any(p < 0 for p in positions):
        raise ValueError("dead-letter positions count from 0 (the newest)")
    return ["0", *sorted(set(positions))]


class RedisQueue:
    """The :class:`~chatpay.core.ports.Queue` port on Redis, with lanes, heartbeats and dead letters.

    Args:
        client: ``redis.asyncio.Redis``, ``redis.asyncio.cluster.RedisCluster`` or
            ``fakeredis.FakeAsyncRedis`` with ``decode_responses=True``.
        name: the list raw updates are pushed to, and the start of every key of this queue:
            :func:`queue_name` of ``CHATPAY_QUEUE`` and the business.
        worker_id: this worker's name in heartbeats and logs.
        heartbeat_ttl: seconds without a heartbeat after which a worker counts as dead.
        max_failures: failed turns after which an update is dead-lettered.
        max_attempts: starts without an outcome (the worker died) after which it is dead-lettered.
        max_dead: dead letters kept; the oldest is dropped when one more arrives.

    Raises:
        ValueError: on a cluster client, ``name`` has no hash tag (its keys would be spread
            over slots that no script can touch at once): use :func:`queue_name`.
    """

    def __init__(
        self, client: Redis, name: str = "chatpay_queue", *, worker_id: str = "worker",
        heartbeat_ttl: float = 15.0, max_failures: int = MAX_FAILURES, max_attempts: int = MAX_ATTEMPTS,
        max_dead: int = MAX_DEAD,
    ) -> None:
        from redis.asyncio.cluster import RedisCluster

        if isinstance(client, RedisCluster) and not _has_hash_tag(name):
            raise ValueError(f"on Redis Cluster the queue name needs a hash tag (use queue_name()): {name!r}")
        if max_dead < 1:
            raise ValueError("max_dead must be at least 1")
        self.client: Any = client
        self.name = name
        self.base_id = worker_id
        self.worker_id = worker_id
        self.heartbeat_ttl = heartbeat_ttl
        self.max_failures = max_failures
        self.max_attempts = max_attempts
        self.max_dead = max_dead
        self.dead_key = f"{name}:dead"
        self._k = {s: f"{name}:{s}" for s in ("staging", "ready", "fast", "workers", "attempts", "failures",
                                               "errors", "fastattempts")}
        self._generation = 0
        # Lanes slots of this process work on, counted: a lane handed back by one slot may be
        # taken by another before the first one's bookkeeping runs.
        self._active: Counter[str] = Counter()
        self._suspects: set[str] = set()
        self._former: dict[str, float] = {}  # ids this process gave up, and when (see _reap_former)
        self._scripts = {
            name: client.register_script(source) for name, source in (
                ("route", scripts.ROUTE), ("begin", scripts.BEGIN), ("finish", scripts.FINISH),
                ("release", scripts.RELEASE), ("reap", scripts.REAP), ("heartbeat", scripts.HEARTBEAT),
                ("finish_fast", scripts.FINISH_FAST), ("depth", scripts.DEPTH),
                ("requeue_dead", scripts.REQUEUE_DEAD), ("purge_dead", scripts.PURGE_DEAD),
            )
        }

    # ------------------------------------------------------------------ keys

    def lane_key(self, lane: str) -> str:
        return f"{self.lane_prefix}{lane}"

    @property
    def lane_prefix(self) -> str:
        """``Q:lane:``; scripts that name a lane only once they run build its key from this."""
        return f"{self.name}:lane:"

    @property
    def prefix(self) -> str:
        """``Q:``; scripts that walk the registered workers build their keys from this."""
        return f"{self.name}:"

    @property
    def heartbeat_key(self) -> str:
        return f"{self.name}:hb:{self.worker_id}"

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
            keys=[self.name, k["staging"], k["ready"], k["fast"], self.lane_prefix], args=[limit]))
        return int(routed)

    async def wait_inbound(self, timeout: float) -> bool:  # noqa: ASYNC109 (a server-side block)
        """Block until an update arrives (moving it to staging, in order); False on timeout."""
        moved = await _queue_call("wait", self.client.brpoplpush(self.name, self._k["staging"], timeout))
        return moved is not None

    # ------------------------------------------------------------------ lanes

    async def reserve(self, timeout: float | None) -> Delivery | None:  # noqa: ASYNC109 (the Queue port)
        """Take a free lane and return its head, or None when no lane is ready within ``timeout``.

        ``timeout=None`` does not wait at all (a worker serving many businesses looks at each in turn).
        """
        if timeout is None:
            lane = await _queue_call("reserve", self.client.rpoplpush(self._k["ready"], self.owned_key))
        else:
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
        """Move an update to ``<queue>:dead`` with ``reason``; the rest of its lane flows on.

        When ``max_dead`` letters are kept already, the oldest is dropped (and logged).
        """
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
                keys=[*self._lane_keys(receipt), self.dead_key],
                args=[receipt.lane, delivery.raw, dead, self.max_dead]))
        finally:
            self._untrack(receipt.lane)
        return self._done(done)

    def _done(self, status: Any) -> bool:
        if int(status) == 2:
            log.error("dead letters full; dropped the oldest", extra={"queue": self.name, "kept": self.max_dead})
        return bool(int(status))

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
            args=[delivery.raw, dead, "1" if retry else "0", self.max_dead]))
        return self._done(done)

    # ------------------------------------------------------------------ liveness

    async def heartbeat(self, *, register: bool = False) -> bool:
        """Refresh this worker's heartbeat (registering it first when ``register``).

        When another worker reaped this one meanwhile (its heartbeat had expired), the
        worker takes a fresh id and returns False: its in-flight updates now belong to
        others, and their fenced commits and acknowledgements will be refused.
        """
        ttl_ms = max(int(self.heartbeat_ttl * 1000), 100)
        alive = await _queue_call("heartbeat", self._scripts["heartbeat"](
            keys=[self._k["workers"], self.heartbeat_key], args=[self.worker_id, ttl_ms, "1" if register else "0"]))
        if int(alive):
            return True
        self._generation += 1
        old, self.worker_id = self.worker_id, f"{self.base_id}.{self._generation}"
        self._former[old] = time.monotonic()
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
            keys=[k["workers"], k["ready"], k["fast"], self.prefix], args=[""]))
        for worker in ids:
            log.warning("reclaimed the updates of a dead worker", extra={"dead_worker": worker})
        return [str(i) for i in ids]

    async def retire(self) -> None:
        """Hand back everything this worker still holds and deregister (clean shutdown)."""
        k = self._k
        await _queue_call("retire", self._scripts["reap"](
            keys=[k["workers"], k["ready"], k["fast"], self.prefix], args=[self.worker_id]))
        self._active.clear()

    async def recover_orphans(self) -> list[str]:
        """Hand back lanes in this worker's list that no slot works on (a reply lost to a reset).

        A lane counts as orphaned only when seen idle on two calls in a row, so a lane that a
        slot has just taken is never handed back by mistake.
        """
        await self._reap_former()
        owned = set(await _queue_call("owned", self.client.lrange(self.owned_key, 0, -1)))
        idle = owned - set(self._active)
        orphans = idle & self._suspects
        self._suspects = idle - orphans
        for lane in orphans:
            await _queue_call("recover", self._scripts["release"](
                keys=self._lane_keys(Receipt("lane", lane, self.owned_key)), args=[lane, "", "0"]))
            log.warning("handed back an orphaned lane", extra={"lane": lane})
        return sorted(orphans)

    async def _reap_former(self) -> None:
        """Hand back what lands in this process's lists under an id it gave up (it was presumed dead).

        A blocking take issued under the old id can still move a lane into the old id's list after
        the others reaped it; nobody serves that list (the id is no longer registered), so the
        lane's updates would wait for ever. The old ids are swept for :data:`FORMER_ID_SECONDS`.
        """
        k = self._k
        now = time.monotonic()
        for former, since in list(self._former.items()):
            ids = await _queue_call("reap former", self._scripts["reap"](
                keys=[k["workers"], k["ready"], k["fast"], self.prefix], args=[former]))
            if ids:
                log.warning("handed back updates taken under a former id", extra={"former_worker": former})
            if now - since > FORMER_ID_SECONDS:
                del self._former[former]

    # ------------------------------------------------------------------ inspection

    async def depth(self) -> dict[str, int]:
        """How many updates wait where: inbound, staging, in lanes, fast, dead; and ready lanes.

        Lanes are counted through ``Q:ready`` and the registered workers' lists (one script,
        one slot), never by scanning the key space, which on a cluster spans every node.
        """
        k = self._k
        counts = await _queue_call("depth", self._scripts["depth"](
            keys=[self.name, k["staging"], k["ready"], k["fast"], self.dead_key, k["workers"], self.prefix], args=[]))
        inbound, staging, lanes, ready, fast, dead = (int(c) for c in counts)
        return {"inbound": inbound, "staging": staging, "lanes": lanes, "ready_lanes": ready, "fast": fast,
                "dead": dead}

    # ------------------------------------------------------------------ dead letters (for the operator)

    async def dead_count(self) -> int:
        """How many dead letters this business's queue keeps."""
        return int(await _queue_call("dead count", self.client.llen(self.dead_key)))

    async def dead_letters(self, start: int = 0, count: int = 20) -> list[dict[str, Any]]:
        """Up to ``count`` dead letters from ``start``, newest first (position 0 is the newest).

        Each is ``{position, raw, reason, worker, attempts, at, age}``: ``raw`` the update as
        Telegram sent it, ``at`` when it was dead-lettered (ISO 8601, UTC) and ``age`` how many
        seconds ago. Positions are what :meth:`requeue_dead` and :meth:`purge_dead` take; a new
        dead letter shifts them by one.
        """
        if start < 0 or count < 0:
            raise ValueError("start and count must not be negative")
        if count == 0:
            return []
        raws = await _queue_call("dead letters", self.client.lrange(self.dead_key, start, start + count - 1))
        now = datetime.now(UTC)
        letters = []
        for position, raw in enumerate(raws, start=start):
            try:
                entry: dict[str, Any] = json.loads(raw)
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
            except ValueError:
                entry = {"raw": raw, "reason": "unreadable dead letter", "worker": "", "attempts": 0, "at": ""}
            letters.append({"position": position, **entry, "age": _age(entry.get("at"), now)})
        return letters

    async def requeue_dead(self, positions: list[int] | None = None) -> int:
        """Queue dead letters again (all when ``positions`` is None), oldest first; returns how many.

        In one script, each chosen entry leaves the dead letters and its raw update goes onto
        this business's inbound list, where workers route and run it like a new arrival (its
        failure counts start afresh). Positions are as :meth:`dead_letters` numbers them;
        positions past the end are ignored.
        """
        args = _positions(positions)
        moved = await _queue_call("requeue dead", self._scripts["requeue_dead"](
            keys=[self.dead_key, self.name], args=args))
        return int(moved)

    async def purge_dead(self, positions: list[int] | None = None) -> int:
        """Drop dead letters for good (all when ``positions`` is None); returns how many were dropped."""
        args = _positions(positions)
        dropped = await _queue_call("purge dead", self._scripts["purge_dead"](keys=[self.dead_key], args=args))
        return int(dropped)

    async def workers(self) -> set[str]:
        return {str(w) for w in await _queue_call("workers", self.client.smembers(self._k["workers"]))}
