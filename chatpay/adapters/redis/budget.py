"""Budget counters on Redis, shared by every worker process, and their reconciliation source.

:class:`RedisBudgetCounter` is the :class:`~chatpay.core.budget.BudgetCounter` of a deployment
with several worker processes. Keys, every one of a business under its Redis Cluster hash tag
``{<business>}`` (see :func:`chatpay.adapters.redis.stores.hash_tag`), so one script may touch
them all::

    <prefix>:{<business>}:budget:day:<YYYY-MM-DD>      hash {tokens, usd_nanos}
    <prefix>:{<business>}:budget:month:<YYYY-MM>       hash {tokens, usd_nanos}
    <prefix>:{<business>}:budget:notice:<period>:<name> "1", set once (SET NX) per notice

USD is counted in integer nano-dollars (``usd_nanos``, :data:`chatpay.core.budget.USD_SCALE`),
finer than micro-dollars because a token of the cheapest model costs 2 x 10⁻⁸ USD. Each key
expires :data:`KEEP_AFTER_END` after its period ends. Adding a call is one Lua script
(``HINCRBY`` of both fields of both periods, and their expiries); reading is one script that
returns both periods' four numbers; reconciliation's overwrite is a script too (cluster
clients have no MULTI across calls).

:class:`MongoUsageTotals` sums one business's usage records of a month (and the day within
it) in one aggregate on the ``usage`` collection, for
:meth:`~chatpay.core.budget.BudgetGuard.reconcile`. It belongs beside ``MongoUsageLog`` in
``chatpay.adapters.mongo.logs``; it lives here until that module takes it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from chatpay.adapters.redis.stores import _check_prefix, hash_tag, translated
from chatpay.core.budget import Periods, Spent, UsageTotals, period_end, usd_amount, usd_units

log = logging.getLogger(__name__)

KEEP_AFTER_END = timedelta(days=2)
"""How long a period's counter outlives the period (late reads, reconciliation, inspection)."""

# KEYS: day, month.  ARGV: tokens, usd nanos, day expiry (unix s), month expiry (unix s).
# Returns day tokens, day nanos, month tokens, month nanos after the addition.
ADD = """
local dt = redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
local du = redis.call('HINCRBY', KEYS[1], 'usd_nanos', ARGV[2])
local mt = redis.call('HINCRBY', KEYS[2], 'tokens', ARGV[1])
local mu = redis.call('HINCRBY', KEYS[2], 'usd_nanos', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
redis.call('EXPIREAT', KEYS[2], ARGV[4])
return {dt, du, mt, mu}
"""

# KEYS: one period.  ARGV: tokens, usd nanos, expiry (unix s).  A script, not MULTI: cluster clients run it too.
SET = """
redis.call('HSET', KEYS[1], 'tokens', ARGV[1], 'usd_nanos', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return 1
"""

# KEYS: day, month.  Returns day tokens, day nanos, month tokens, month nanos (false when unset).
READ = """
local d = redis.call('HMGET', KEYS[1], 'tokens', 'usd_nanos')
local m = redis.call('HMGET', KEYS[2], 'tokens', 'usd_nanos')
return {d[1], d[2], m[1], m[2]}
"""


class RedisBudgetCounter:
    """:class:`~chatpay.core.budget.BudgetCounter` on Redis: O(1) reads, atomic adds, once-only notices.

    Args:
        client: a ``redis.asyncio.Redis`` or ``RedisCluster`` with ``decode_responses=True``
            (:func:`chatpay.adapters.redis.connect` makes one).
        prefix: the key prefix, ``chatpay`` by default; no braces.

    Redis errors become :class:`~chatpay.core.errors.StorageError` naming the operation.
    """

    def __init__(self, client: Any, *, prefix: str = "chatpay") -> None:
        _check_prefix(prefix)
        self.client = client
        self.prefix = prefix
        self._add = client.register_script(ADD)
        self._read = client.register_script(READ)
        self._set = client.register_script(SET)

    def key(self, business_id: str, period_key: str) -> str:
        """``<prefix>:{<business>}:budget:<day|month>:<date>`` for a period key ``day:...``/``month:...``."""
        return f"{self.prefix}:{hash_tag(business_id)}:budget:{period_key}"

    def notice_key(self, business_id: str, period_key: str, notice: str) -> str:
        return f"{self.prefix}:{hash_tag(business_id)}:budget:notice:{period_key}:{notice}"

    @staticmethod
    def _expiry(period_key: str) -> int:
        return int((period_end(period_key) + KEEP_AFTER_END).timestamp())

    async def add(self, business_id: str, tokens: int, cost_usd: Decimal, at: datetime) -> Spent:
        p = Periods.of(at)
        keys = [self.key(business_id, p.day_key), self.key(business_id, p.month_key)]
        args = [int(tokens), usd_units(cost_usd), self._expiry(p.day_key), self._expiry(p.month_key)]
        dt, du, mt, mu = await translated("budget add", self._add(keys=keys, args=args))
        return Spent.of_units(int(dt), int(mt), int(du), int(mu))

    async def spent(self, business_id: str, at: datetime) -> Spent:
        p = Periods.of(at)
        keys = [self.key(business_id, p.day_key), self.key(business_id, p.month_key)]
        dt, du, mt, mu = await translated("budget spent", self._read(keys=keys))
        return Spent.of_units(int(dt or 0), int(mt or 0), int(du or 0), int(mu or 0))

    async def set(self, business_id: str, period_key: str, tokens: int, usd: Decimal) -> None:
        args = [int(tokens), usd_units(usd), self._expiry(period_key)]
        await translated("budget set", self._set(keys=[self.key(business_id, period_key)], args=args))

    async def claim_notice(self, business_id: str, period_key: str, notice: str) -> bool:
        key = self.notice_key(business_id, period_key, notice)
        won = await translated("budget notice", self.client.set(key, "1", nx=True, exat=self._expiry(period_key)))
        return bool(won)


class MongoUsageTotals:
    """:class:`~chatpay.core.budget.UsageAggregate` on the ``usage`` collection: one aggregate.

    Sums ``total_tokens`` and ``cost_usd`` (Decimal128, summed exactly by the server; unknown
    costs are null and count 0) of one business's records in a month, and of those in one day.

    Args:
        db: the PyMongo (or mongomock) database the usage log writes to.
        offload: run the aggregate in a worker thread (a real server), as the stores do.
    """

    def __init__(self, db: Any, *, offload: bool = False) -> None:
        from chatpay.adapters.mongo._base import USAGE, Runner

        self._col = db[USAGE]
        self._run = Runner(offload=offload)

    async def usage_totals(self, business_id: str, periods: Periods) -> UsageTotals:
        return await self._run("usage totals", self._totals, business_id, periods)

    def _totals(self, business_id: str, p: Periods) -> UsageTotals:
        in_day = {"$and": [{"$gte": ["$at", p.day_start]}, {"$lt": ["$at", p.day_end]}]}
        rows = list(self._col.aggregate([
            {"$match": {"business_id": business_id, "at": {"$gte": p.month_start, "$lt": p.month_end}}},
            {"$group": {
                "_id": None,
                "month_tokens": {"$sum": "$total_tokens"},
                "month_usd": {"$sum": "$cost_usd"},
                "day_tokens": {"$sum": {"$cond": [in_day, "$total_tokens", 0]}},
                "day_usd": {"$sum": {"$cond": [in_day, "$cost_usd", 0]}},
            }},
        ]))
        if not rows:
            return UsageTotals(0, 0, Decimal(0), Decimal(0))
        row = rows[0]
        return UsageTotals(int(row["day_tokens"]), int(row["month_tokens"]),
                           _usd(row["day_usd"]), _usd(row["month_usd"]))


def _usd(value: Any) -> Decimal:
    """A summed cost as exact USD (Decimal128 from the server, or 0 when nothing had a cost)."""
    from bson.decimal128 import Decimal128

    if isinstance(value, Decimal128):
        return usd_amount(usd_units(value.to_decimal()))
    return usd_amount(usd_units(Decimal(str(value or 0))))
