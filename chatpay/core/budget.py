"""Per-business spending caps, checked in O(1) before every model call.

The old check summed every usage record of a business on every model call, a cost that
grew with the business's history. Here spending is kept in per-period counters (UTC days
and months) that one read answers; the usage records stay the source of truth and are
summed only by :meth:`BudgetGuard.reconcile`, at start-up and periodically, never per call.

- :class:`BudgetCounter` is the port: add to, read and set the counters of one business,
  and claim a once-per-period notice. :class:`InMemoryBudgetCounter` serves the embedded
  default and tests; ``chatpay.adapters.redis.budget.RedisBudgetCounter`` is shared by every
  worker process.
- :class:`BudgetGuard` holds one business's caps (``chatpay.businesses.Budget`` or anything
  with its four attributes): :meth:`~BudgetGuard.check` raises :class:`BudgetCapReached` (a
  :class:`~chatpay.core.errors.BudgetExceeded`, hence a ``ModelError``) when a cap is
  reached, which every model call site already answers with the offline engine's reply;
  :meth:`~BudgetGuard.record` counts a call and records a ``BudgetWarning`` event the first
  time a period's spending reaches 80 % of a cap (and ``BudgetSpent`` at 100 %), once per
  business and period across every process.

USD amounts are counted in integer nano-dollars (:data:`USD_SCALE`): prices are quoted per
million tokens with cents, so one token costs a multiple of 10⁻⁸ USD and nano-dollars keep
every cost exact. Floats never touch money.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Literal, Protocol, runtime_checkable

from chatpay.core.errors import BudgetExceeded
from chatpay.core.ports import Clock, EventLog, UsageLog
from chatpay.core.telemetry import Event

log = logging.getLogger(__name__)

USD_SCALE = 10**9
"""Counters hold USD as integer nano-dollars: exact for any price with up to 3 decimals per million tokens."""

WARN_AT = (4, 5)
"""The warning threshold as a fraction, 4/5 = 80 %, compared in integers (``spent * 5 >= cap * 4``)."""

Period = Literal["day", "month"]
CapName = Literal["daily_tokens", "monthly_tokens", "daily_usd", "monthly_usd"]


# ----------------------------------------------------------------------------- money and periods


def usd_units(cost: Decimal | None) -> int:
    """``cost`` in nano-dollars. An unknown cost (``None``) counts 0; a finer amount rounds up.

    Rounding up, never down, means a cap is never overspent by rounding; with today's price
    table (:mod:`chatpay.core.pricing`) every cost is a whole number of nano-dollars.
    """
    if cost is None:
        return 0
    return int((cost * USD_SCALE).to_integral_value(rounding=ROUND_CEILING))


def usd_amount(units: int) -> Decimal:
    """Nano-dollars back to an exact USD :class:`Decimal` (``1500`` -> ``Decimal('0.0000015')``)."""
    return (Decimal(units) / USD_SCALE).normalize() if units else Decimal(0)


def utc(at: datetime) -> datetime:
    """``at`` in UTC; a naive datetime is taken to be UTC already (as PyMongo returns them)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def day_key(at: datetime) -> str:
    """The period key of ``at``'s UTC day: ``day:YYYY-MM-DD``."""
    return f"day:{utc(at):%Y-%m-%d}"


def month_key(at: datetime) -> str:
    """The period key of ``at``'s UTC month: ``month:YYYY-MM``."""
    return f"month:{utc(at):%Y-%m}"


@dataclass(frozen=True)
class Periods:
    """The UTC day and month that hold one instant, with their bounds."""

    day_key: str
    month_key: str
    day_start: datetime
    day_end: datetime
    month_start: datetime
    month_end: datetime

    @classmethod
    def of(cls, at: datetime) -> Periods:
        at = utc(at)
        day_start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        month_start = day_start.replace(day=1)
        month_end = (month_start + timedelta(days=32)).replace(day=1)
        return cls(day_key(at), month_key(at), day_start, day_start + timedelta(days=1), month_start, month_end)


def period_end(period_key: str) -> datetime:
    """When the period ``day:YYYY-MM-DD`` or ``month:YYYY-MM`` ends (exclusive, UTC).

    Raises:
        ValueError: the key is not a day or month key.
    """
    kind, _, value = period_key.partition(":")
    if kind == "day":
        start = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        return start + timedelta(days=1)
    if kind == "month":
        start = datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
        return (start + timedelta(days=32)).replace(day=1)
    raise ValueError(f"not a budget period key: {period_key!r} (day:YYYY-MM-DD or month:YYYY-MM)")


# ----------------------------------------------------------------------------- the counter port


@dataclass(frozen=True)
class Spent:
    """What one business spent in the UTC day and month of one instant; USD exact."""

    day_tokens: int = 0
    month_tokens: int = 0
    day_usd: Decimal = Decimal(0)
    month_usd: Decimal = Decimal(0)

    @classmethod
    def of_units(cls, day_tokens: int, month_tokens: int, day_units: int, month_units: int) -> Spent:
        """From counter values, USD in nano-dollars."""
        return cls(day_tokens, month_tokens, usd_amount(day_units), usd_amount(month_units))


class BudgetCounter(Protocol):
    """Per-business spending counters for UTC days and months, read in O(1).

    ``period_key`` is ``day:YYYY-MM-DD`` or ``month:YYYY-MM`` (:func:`day_key`, :func:`month_key`).
    """

    async def add(self, business_id: str, tokens: int, cost_usd: Decimal, at: datetime) -> Spent:
        """Add one call's tokens and cost to the day and month of ``at``, atomically; the totals after."""
        ...

    async def spent(self, business_id: str, at: datetime) -> Spent:
        """The day's and month's totals at ``at``: one read, whatever the business's history."""
        ...

    async def set(self, business_id: str, period_key: str, tokens: int, usd: Decimal) -> None:
        """Overwrite one period's totals (reconciliation from the usage records)."""
        ...

    async def claim_notice(self, business_id: str, period_key: str, notice: str) -> bool:
        """True exactly once per (business, period, notice) across every process sharing the counter."""
        ...


class InMemoryBudgetCounter:
    """:class:`BudgetCounter` in this process's memory: the embedded default and tests.

    Every method runs without awaiting in between its read and its write, so it is atomic
    for the coroutines of one event loop. Periods that have ended are dropped on the next
    write of the business.
    """

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str], tuple[int, int]] = {}
        self._notices: set[tuple[str, str, str]] = set()

    async def add(self, business_id: str, tokens: int, cost_usd: Decimal, at: datetime) -> Spent:
        periods = Periods.of(at)
        units = usd_units(cost_usd)
        self._forget_ended(business_id, periods)
        out: list[tuple[int, int]] = []
        for key in (periods.day_key, periods.month_key):
            t, u = self._totals.get((business_id, key), (0, 0))
            self._totals[(business_id, key)] = (t + tokens, u + units)
            out.append(self._totals[(business_id, key)])
        (dt, du), (mt, mu) = out
        return Spent.of_units(dt, mt, du, mu)

    async def spent(self, business_id: str, at: datetime) -> Spent:
        periods = Periods.of(at)
        dt, du = self._totals.get((business_id, periods.day_key), (0, 0))
        mt, mu = self._totals.get((business_id, periods.month_key), (0, 0))
        return Spent.of_units(dt, mt, du, mu)

    async def set(self, business_id: str, period_key: str, tokens: int, usd: Decimal) -> None:
        period_end(period_key)  # checks the key
        self._totals[(business_id, period_key)] = (tokens, usd_units(usd))

    async def claim_notice(self, business_id: str, period_key: str, notice: str) -> bool:
        key = (business_id, period_key, notice)
        if key in self._notices:
            return False
        self._notices.add(key)
        return True

    def _forget_ended(self, business_id: str, periods: Periods) -> None:
        current = {periods.day_key, periods.month_key}
        for b, key in [k for k in self._totals if k[0] == business_id and k[1] not in current]:
            if period_end(key) <= periods.day_start:
                del self._totals[(b, key)]
        for notice in [n for n in self._notices if n[0] == business_id and n[1] not in current]:
            if period_end(notice[1]) <= periods.day_start:
                self._notices.discard(notice)


# ----------------------------------------------------------------------------- usage totals (reconciliation)


@dataclass(frozen=True)
class UsageTotals:
    """Totals of one business's usage records in one UTC day and the month that holds it."""

    day_tokens: int
    month_tokens: int
    day_usd: Decimal
    month_usd: Decimal


@runtime_checkable
class UsageAggregate(Protocol):
    """A usage store that sums a business's records of a month and a day in one query."""

    async def usage_totals(self, business_id: str, periods: Periods) -> UsageTotals:
        """Sum the records with ``month_start <= at < month_end`` (and of those, ``at >= day_start``)."""
        ...


async def usage_totals(usage: UsageAggregate | UsageLog, business_id: str, periods: Periods) -> UsageTotals:
    """The period totals from ``usage``: its one aggregate, or (a plain :class:`UsageLog`) by listing.

    Listing reads every record of the business; it is there for the in-memory usage log.
    Records without a time cannot be placed in a period and are left out; an unknown cost counts 0.
    """
    if isinstance(usage, UsageAggregate):
        return await usage.usage_totals(business_id, periods)
    dt = mt = du = mu = 0
    for rec in await usage.list(business_id):
        if rec.at is None:
            continue
        at = utc(rec.at)
        if periods.month_start <= at < periods.month_end:
            mt += rec.total_tokens
            mu += usd_units(rec.cost_usd)
            if periods.day_start <= at < periods.day_end:
                dt += rec.total_tokens
                du += usd_units(rec.cost_usd)
    return UsageTotals(dt, mt, usd_amount(du), usd_amount(mu))


# ----------------------------------------------------------------------------- the guard


class BudgetCaps(Protocol):
    """One business's caps; ``chatpay.businesses.Budget`` is one. None means no cap."""

    @property
    def daily_tokens(self) -> int | None: ...

    @property
    def monthly_tokens(self) -> int | None: ...

    @property
    def daily_usd(self) -> Decimal | None: ...

    @property
    def monthly_usd(self) -> Decimal | None: ...


class BudgetCapReached(BudgetExceeded):
    """A business reached one of its caps for the current day or month.

    A :class:`BudgetExceeded` (so a ``ModelError``): every model call site answers it with
    the offline engine's reply. ``spent_tokens``/``budget_tokens`` hold the period's tokens and
    the token cap (0 when the cap reached is in USD); ``spent``/``limit`` hold the capped
    quantity itself, tokens or exact USD.
    """

    def __init__(self, business_id: str, cap: CapName, period_key: str, spent: int | Decimal,
                 limit: int | Decimal, spent_tokens: int, budget_tokens: int) -> None:
        unit = "USD" if cap.endswith("_usd") else "tokens"
        Exception.__init__(self, f"business {business_id} reached its {cap} cap for {period_key}: "
                                 f"spent {spent} of {limit} {unit}")
        self.business_id = business_id
        self.cap = cap
        self.period_key = period_key
        self.spent = spent
        self.limit = limit
        self.spent_tokens = spent_tokens
        self.budget_tokens = budget_tokens


@dataclass(frozen=True)
class _Cap:
    name: CapName
    period: Period
    usd: bool
    limit: int  # tokens, or nano-dollars

    def spent(self, s: Spent) -> int:
        if self.usd:
            return usd_units(s.day_usd if self.period == "day" else s.month_usd)
        return s.day_tokens if self.period == "day" else s.month_tokens

    def shown(self, value: int) -> int | Decimal:
        return usd_amount(value) if self.usd else value


def _caps(budget: BudgetCaps) -> tuple[_Cap, ...]:
    found = []
    for name, period, usd in (("daily_tokens", "day", False), ("monthly_tokens", "month", False),
                              ("daily_usd", "day", True), ("monthly_usd", "month", True)):
        value = getattr(budget, name)
        if value is not None:
            limit = usd_units(Decimal(value)) if usd else int(value)
            found.append(_Cap(name, period, usd, limit))  # type: ignore[arg-type]
    return tuple(found)


class BudgetGuard:
    """One business's caps over a shared :class:`BudgetCounter`.

    Args:
        budget: the caps (``chatpay.businesses.Budget``); without any, the guard never reads
            or writes the counter.
        counter: where spending is counted; shared by every process serving the business.
        events: where ``BudgetWarning`` (80 %) and ``BudgetSpent`` (100 %) events go, or None.
        usage: when given, the first check of each business in this process first reconciles
            the counters from these usage records (what start-up needs when the counter lives
            in this process); later checks only read the counter.
    """

    NOTICES = (("BudgetWarning", WARN_AT), ("BudgetSpent", (1, 1)))

    def __init__(self, budget: BudgetCaps, counter: BudgetCounter, events: EventLog | None = None, *,
                 usage: UsageAggregate | UsageLog | None = None) -> None:
        self.budget = budget
        self.counter = counter
        self.events = events
        self.usage = usage
        self.caps = _caps(budget)
        self._reconciled: set[str] = set()
        self._reconciling = asyncio.Lock()

    @property
    def capped(self) -> bool:
        return bool(self.caps)

    async def check(self, business_id: str, at: datetime) -> None:
        """Raise :class:`BudgetCapReached` when any cap of the period holding ``at`` is reached.

        One counter read (or none when nothing is capped): never a scan of usage records.
        """
        if not self.caps:
            return
        if self.usage is not None and business_id not in self._reconciled:
            async with self._reconciling:
                if business_id not in self._reconciled:
                    await self.reconcile(business_id, self.usage, at)
                    self._reconciled.add(business_id)
        spent = await self.counter.spent(business_id, at)
        for cap in self.caps:
            used = cap.spent(spent)
            if used >= cap.limit:
                periods = Periods.of(at)
                tokens = spent.day_tokens if cap.period == "day" else spent.month_tokens
                raise BudgetCapReached(
                    business_id, cap.name, periods.day_key if cap.period == "day" else periods.month_key,
                    cap.shown(used), cap.shown(cap.limit), tokens, 0 if cap.usd else cap.limit)

    async def record(self, business_id: str, tokens: int, cost: Decimal | None, at: datetime, *,
                     thread_id: str = "-", turn_id: str = "-") -> Spent | None:
        """Count one call; the first time a period's spending reaches 80 % (then 100 %) of a cap,
        record one event for the business and period, whichever process gets there first.

        Returns the totals after the call, or None when nothing is capped (nothing is counted).
        """
        if not self.caps:
            return None
        spent = await self.counter.add(business_id, tokens, cost or Decimal(0), at)
        periods = Periods.of(at)
        for event_name, (num, den) in self.NOTICES:
            for period, key in (("day", periods.day_key), ("month", periods.month_key)):
                crossed = [c for c in self.caps if c.period == period and c.spent(spent) * den >= c.limit * num]
                if not crossed:
                    continue
                if not await self.counter.claim_notice(business_id, key, event_name):
                    continue
                cap = crossed[0]
                data = {"period": period, "period_key": key.partition(":")[2], "cap": cap.name,
                        "limit": str(cap.shown(cap.limit)), "spent": str(cap.shown(cap.spent(spent))),
                        "threshold": f"{num * 100 // den}%", "caps": [c.name for c in crossed]}
                log.warning("budget %s", event_name, extra={"business_id": business_id, **data})
                if self.events is not None:
                    await self.events.record(Event(business_id, thread_id, turn_id, event_name, data, utc(at)))
        return spent

    async def reconcile(self, business_id: str, usage_store: UsageAggregate | UsageLog, at: datetime) -> Spent:
        """Set the counters of ``at``'s day and month to the totals of the usage records.

        One aggregate over the month's records (a plain usage log is listed instead); run it at
        start-up and periodically, never per call. Calls counted between the aggregate and the
        write are lost from the counters until the next reconciliation.
        """
        periods = Periods.of(at)
        totals = await usage_totals(usage_store, business_id, periods)
        await self.counter.set(business_id, periods.month_key, totals.month_tokens, totals.month_usd)
        await self.counter.set(business_id, periods.day_key, totals.day_tokens, totals.day_usd)
        return Spent(totals.day_tokens, totals.month_tokens, totals.day_usd, totals.month_usd)

    async def reconcile_every(self, business_ids: Sequence[str], usage_store: UsageAggregate | UsageLog,
                              clock: Clock, interval_s: float = 300.0) -> None:
        """Reconcile ``business_ids`` now and then every ``interval_s`` seconds, until cancelled.

        A failed round is logged and tried again at the next interval.
        """
        while True:
            for business_id in business_ids:
                try:
                    await self.reconcile(business_id, usage_store, clock.now())
                except Exception as exc:  # the counters keep counting; the next round catches up
                    log.warning("budget reconciliation failed",
                                extra={"business_id": business_id, "error": repr(exc)})
            await asyncio.sleep(interval_s)
