"""The USDC poller: checks pending USDC orders until they are paid or expire, one at a time per fleet.

A Solana Pay transfer request calls nobody back (see :mod:`chatpay.adapters.payments.solana_pay`),
so a poller looks each pending order's reference up on chain. It runs under a named lock
(:class:`RedisLock` across a fleet, :class:`InMemoryLock` in tests) so that one poller works at a
time, and hands payments, problems and expired orders to the payments service's callbacks.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from redis.exceptions import RedisError

from chatpay.adapters.payments.solana_pay import PaymentProblem, SolanaPayProvider
from chatpay.core.errors import PaymentError, QueueError
from chatpay.core.orders import ConfirmedPayment, Order
from chatpay.core.ports import Clock, OrderStore

log = logging.getLogger(__name__)


class PollerLock(Protocol):
    """A named lock with a time limit, so that one poller runs at a time across a fleet.

    The TTL frees the lock of a poller that died; a holder's ``release`` never frees a lock
    that expired and was taken by another.
    """

    async def acquire(self, name: str, ttl_seconds: float) -> bool: ...

    async def release(self, name: str) -> None: ...


# KEYS: the lock.  ARGV: the holder's token.  Deletes the lock only if this holder still has it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLock:
    """:class:`PollerLock` on Redis: ``SET key token NX PX ttl``, and a compare-and-delete release.

    Each instance has its own random token, so give each process (poller) its own instance.

    Args:
        client: A ``redis.asyncio.Redis`` (see :func:`chatpay.adapters.redis.connect`).
        prefix: Key prefix of the locks.
    """

    def __init__(self, client: Any, *, prefix: str = "chatpay:lock:") -> None:
        self._client = client
        self._prefix = prefix
        self._token = secrets.token_hex(16)
        self._release = client.register_script(_RELEASE)

    async def acquire(self, name: str, ttl_seconds: float) -> bool:
        """Take the lock for ``ttl_seconds`` unless anyone (this instance included) holds it.

        Raises:
            QueueError: Redis could not be reached.
        """
        try:
            taken = await self._client.set(self._prefix + name, self._token, nx=True,
                                           px=max(1, round(ttl_seconds * 1000)))
        except RedisError as exc:
            raise QueueError(f"lock {name}: {type(exc).__name__}") from exc
        return bool(taken)

    async def release(self, name: str) -> None:
        """Free the lock if this instance still holds it.

        Raises:
            QueueError: Redis could not be reached.
        """
        try:
            await self._release(keys=[self._prefix + name], args=[self._token])
        except RedisError as exc:
            raise QueueError(f"lock {name}: {type(exc).__name__}") from exc


class InMemoryLock:
    """:class:`PollerLock` in one process, for tests and the embedded mode.

    Instances made with the same ``table`` exclude each other, as processes sharing one Redis
    do; each instance is one holder.
    """

    def __init__(self, table: dict[str, tuple[str, float]] | None = None, *,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._table: dict[str, tuple[str, float]] = {} if table is None else table
        self._now = now
        self._token = secrets.token_hex(8)

    async def acquire(self, name: str, ttl_seconds: float) -> bool:
        held = self._table.get(name)
        if held is not None and held[1] > self._now():
            return False
        self._table[name] = (self._token, self._now() + ttl_seconds)
        return True

    async def release(self, name: str) -> None:
        held = self._table.get(name)
        if held is not None and held[0] == self._token:
            del self._table[name]


@dataclass(frozen=True)
class PollReport:
    """What one :meth:`UsdcPoller.run_once` did, by order id (for logs and tests)."""

    ran: bool  # False when another poller held the lock
    paid: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # the check raised; tried again next run, never expired meanwhile


class UsdcPoller:
    """Checks every pending USDC order until it is paid or expires.

    The callbacks belong to the payments service: ``on_payment`` records the payment (the
    order store keeps the signature unique, so a payment seen twice pays once), ``on_problem``
    tells the merchant, ``on_expired`` expires the order. ``on_problem`` is called on every run
    while the order stays pending, so it must be idempotent (flag the order once). An order
    past its expiry is still checked first, so money that arrived in time is never missed; one
    with only a problem is reported and then expired too. Errors raised by a callback end the
    run (the lock is released).

    Args:
        provider: The USDC provider.
        orders: The order store.
        clock: What time it is (orders expire ``expiry`` after ``created_at``).
        lock: Held for the whole run, so one poller runs at a time across the fleet.
        lock_ttl_seconds: Longer than a run can take (orders x 2 RPC calls x timeout, roughly).
        limit: Pending orders looked at per run.
    """

    def __init__(
        self,
        provider: SolanaPayProvider,
        orders: OrderStore,
        clock: Clock,
        *,
        lock: PollerLock,
        on_payment: Callable[[ConfirmedPayment], Awaitable[None]],
        on_problem: Callable[[PaymentProblem], Awaitable[None]],
        on_expired: Callable[[Order], Awaitable[None]],
        expiry: timedelta = timedelta(minutes=30),
        lock_name: str = "usdc-poller",
        lock_ttl_seconds: float = 300.0,
        limit: int = 1000,
    ) -> None:
        self.provider = provider
        self.orders = orders
        self.clock = clock
        self.lock = lock
        self.on_payment = on_payment
        self.on_problem = on_problem
        self.on_expired = on_expired
        self.expiry = expiry
        self.lock_name = lock_name
        self.lock_ttl_seconds = lock_ttl_seconds
        self.limit = limit

    async def run_once(self) -> PollReport:
        """Check every pending USDC order once, unless another poller holds the lock."""
        if not await self.lock.acquire(self.lock_name, self.lock_ttl_seconds):
            return PollReport(ran=False)
        try:
            return await self._run()
        finally:
            await self.lock.release(self.lock_name)

    async def _run(self) -> PollReport:
        paid: list[str] = []
        problems: list[str] = []
        expired: list[str] = []
        failed: list[str] = []
        pending = await self.orders.list(state="pending", limit=self.limit)
        for order in (o for o in pending if o.provider == self.provider.name):
            try:
                outcome = await self.provider.check(order)
            except PaymentError as exc:
                log.warning("usdc check failed", extra={"order_id": order.id, "error": str(exc)})
                failed.append(order.id)
                continue
            if isinstance(outcome, ConfirmedPayment):
                await self.on_payment(outcome)
                paid.append(order.id)
                continue
            if outcome is not None:
                await self.on_problem(outcome)
                problems.append(order.id)
            if self.clock.now() >= order.created_at + self.expiry:
                await self.on_expired(order)
                expired.append(order.id)
        return PollReport(True, tuple(paid), tuple(problems), tuple(expired), tuple(failed))
