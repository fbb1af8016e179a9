"""What a worker does for payments that do not arrive as Telegram updates.

USDC transfers are found by polling the chain (:class:`~chatpay.adapters.payments.solana_pay.UsdcPoller`,
one poller at a time across the fleet by a Redis lock). A payment it finds is queued as a
confirmed-payment update (:func:`chatpay.core.updates.confirmed_payment_update`) in the shopper's
lane, so it is settled, receipted and committed like any other turn, once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from chatpay.core.checkout import transition_event
from chatpay.core.errors import ChatPayError, ConcurrencyConflict
from chatpay.core.orders import ConfirmedPayment, Order
from chatpay.core.telemetry import Event
from chatpay.core.updates import confirmed_payment_update

log = logging.getLogger(__name__)

PROBLEM_FLAG = "payment_problem"


def usdc_poller(runtime: Any, queue: Any, client: Any) -> Any | None:
    """The poller for this runtime's USDC provider, or None when the shop takes no USDC."""
    from chatpay.adapters.payments.solana_pay import SolanaPayProvider
    from chatpay.adapters.payments.solana_poller import RedisLock, UsdcPoller

    provider = runtime.engine.payments
    orders = runtime.stores.orders
    if not isinstance(provider, SolanaPayProvider) or orders is None:
        return None

    async def on_payment(payment: ConfirmedPayment) -> None:
        order = await orders.find(payment.order_id)
        if order is None:
            log.warning("USDC payment for an unknown order", extra={"order": payment.order_id})
            return
        await queue.push(confirmed_payment_update(payment, thread_id=order.thread_id, chat_id=order.chat_id))

    async def on_problem(problem: Any) -> None:
        order = await orders.find(problem.order_id)
        if order is None or PROBLEM_FLAG in order.flags:
            return  # reported once; the poller sees the same transaction on every run
        from dataclasses import replace

        flagged = replace(order.flagged(PROBLEM_FLAG), extra={**order.extra, "problem": problem.reason,
                                                              "problem_signature": problem.signature})
        try:
            await orders.update(flagged, order.state)
        except ConcurrencyConflict:
            return
        await runtime.stores.events.record(Event(
            name="PaymentRefused", business_id=order.business_id, thread_id=order.thread_id,
            turn_id="usdc-poller", at=runtime.clock.now(),
            data={"order": order.id, "reason": problem.reason, "signature": problem.signature}))

    async def on_expired(order: Order) -> None:
        try:
            done = await orders.update(order.to("expired", runtime.clock.now(), "no matching USDC transfer in time"),
                                       "pending")
        except ConcurrencyConflict:
            return  # paid or expired by another run meanwhile
        await runtime.stores.events.record(transition_event(done, source="usdc-poller"))

    from chatpay.adapters.redis import hash_tag

    # One poller per business across the fleet: the lock is the business's, so two shops never wait on each other.
    lock = RedisLock(client, prefix=f"chatpay:{hash_tag(runtime.settings.business_id)}:lock:")
    return UsdcPoller(provider, orders, runtime.clock, lock=lock, on_payment=on_payment,
                      on_problem=on_problem, on_expired=on_expired)


async def _pause(closed: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less when ``closed`` is set meanwhile."""
    try:
        await asyncio.wait_for(closed.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def poll_forever(poller: Any, closed: asyncio.Event, every: float) -> None:
    """Run ``poller`` every ``every`` seconds until ``closed`` is set; a failed run is logged and retried."""
    while not closed.is_set():
        try:
            report = await poller.run_once()
            if report.ran and (report.paid or report.problems or report.expired or report.failed):
                log.info("usdc poll", extra={"paid": report.paid, "problems": report.problems,
                                             "expired": report.expired, "failed": report.failed})
        except ChatPayError as exc:
            log.warning("usdc poll failed; retrying", extra={"error": str(exc)})
        await _pause(closed, every)


SWEEP_SECONDS = 600.0  # orders expire by the day; looking every ten minutes is plenty


async def sweep_forever(runtime: Any, closed: asyncio.Event, every: float = SWEEP_SECONDS) -> None:
    """Expire unpaid Telegram and Stripe orders older than a day (USDC orders expire in the poller)."""
    from chatpay.core.checkout import expire_stale

    orders = runtime.stores.orders
    while orders is not None and not closed.is_set():
        try:
            expired = await expire_stale(orders, now=runtime.clock.now(),
                                         providers=frozenset({"telegram", "stars", "stripe"}))
            for order in expired:
                await runtime.stores.events.record(transition_event(order, source="order-sweep"))
            if expired:
                log.info("expired unpaid orders", extra={"orders": [o.id for o in expired]})
        except ChatPayError as exc:
            log.warning("order sweep failed; retrying", extra={"error": str(exc)})
        await _pause(closed, every)
