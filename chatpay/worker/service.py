"""The worker's loops and the life of one update, from the queue to Telegram and back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from chatpay.adapters.mongo import MongoJournal
from chatpay.adapters.redis import RedisQueue, RedisStateStores, StagedTurn
from chatpay.bootstrap import Runtime
from chatpay.core.errors import (
    ChannelError,
    ChannelUnavailable,
    ChatPayError,
    InvalidInput,
    QueueError,
    RetryAfter,
)
from chatpay.core.ports import Delivery, OutgoingMessage, TurnStore
from chatpay.core.service import TurnResult, TurnService, new_turn_id
from chatpay.core.turns import Turn
from chatpay.core.updates import parse_raw
from chatpay.worker.admission import Admission
from chatpay.worker.options import Backoff, BotChannel, WorkerOptions, transient
from chatpay.worker.tenants import Runtimes, Tenant

log = logging.getLogger(__name__)

class Worker:
    """Serves the queues of one or many businesses with ``options.concurrency`` turns in flight.

    Args:
        runtime, queue, channel: the one business served (its wired runtime, its queue, its bot);
            pass None for all three and give ``tenants`` and ``runtimes`` to serve many.
        state: the shared Redis stores, when turns commit there atomically; None to run turns
            on each runtime's stores (MongoDB).
        tenants: the businesses served, each with its own queue and bot.
        runtimes: each business's runtime (the worker builds them at start, up to the cache's size).

    Fairness: the slots are shared by every business, and a free slot looks first at the
    business with the fewest turns in flight (:meth:`_reserve`), so a business with a flood of
    shoppers gets the slots only while the others have nothing waiting.
    """

    def __init__(self, runtime: Runtime | None, queue: RedisQueue | None, channel: BotChannel | None, *,
                 state: RedisStateStores | None = None, options: WorkerOptions | None = None,
                 tenants: Sequence[Tenant] = (), runtimes: Runtimes | None = None, metrics: Any = None) -> None:
        if runtime is not None:
            assert queue is not None and channel is not None
            tenants = [Tenant(runtime.settings.business_id, queue, channel, runtime.settings.payments)]
            runtimes = Runtimes.fixed(runtime)
        if not tenants or runtimes is None:
            raise ValueError("a worker serves at least one business: give runtime, queue and channel, or tenants "
                             "and runtimes")
        self.tenants = list(tenants)
        self.by_queue = {t.queue.name: t for t in self.tenants}
        self.runtimes = runtimes
        self.queue = self.tenants[0].queue  # the first business's (logs, the one-business tests)
        self.state = state
        self.options = options or WorkerOptions()
        self.metrics = metrics
        self.counts: dict[str, int] = {}
        self._stopping = asyncio.Event()
        self._closed = asyncio.Event()
        self._fast: set[asyncio.Task[bool]] = set()
        self._journals: dict[str, MongoJournal] = {}
        self._inflight: Counter[str] = Counter()  # turns in flight per business, in this process
        self.admission = Admission(self.options.concurrency)

    @property
    def worker_id(self) -> str:
        return self.queue.worker_id

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _journal(self, runtime: Runtime) -> MongoJournal | None:
        """The turn journal on ``runtime``'s MongoDB, one per business; None with Redis state or no database."""
        if self.state is not None or runtime.database is None:
            return None
        business = runtime.settings.business_id
        if business not in self._journals:
            self._journals[business] = MongoJournal(runtime.database, offload=bool(runtime.settings.mongodb_uri))
        return self._journals[business]

    async def _turns(self, tenant: Tenant) -> TurnStore:
        if self.state is not None:
            return self.state.turns
        runtime = await self.runtimes.get(tenant.business_id)
        return self._journal(runtime) or runtime.stores.turns

    # ------------------------------------------------------------------ loops

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then drain in-flight turns and hand back the rest."""
        for tenant in self.tenants:
            await self._until_reachable(lambda q=tenant.queue: q.heartbeat(register=True), stop)
        log.info("worker serving", extra={"worker": self.worker_id, "businesses": [t.business_id for t in self.tenants],
                                          "concurrency": self.options.concurrency,
                                          "state_store": "redis" if self.state else "runtime"})
        liveness = [asyncio.create_task(self._liveness(t), name=f"liveness-{t.business_id}") for t in self.tenants]
        work = [asyncio.create_task(self._route(t), name=f"router-{t.business_id}") for t in self.tenants]
        work += [asyncio.create_task(self._fast_lane(t), name=f"fast-{t.business_id}") for t in self.tenants]
        work += [asyncio.create_task(self._slot(i), name=f"slot-{i}") for i in range(self.options.concurrency)]
        polling = [asyncio.create_task(self._payments(t), name=f"usdc-{t.business_id}")
                   for t in self.tenants if t.payments == "usdc"]
        polling.append(asyncio.create_task(self._sweep(), name="order-sweep"))
        polling.append(asyncio.create_task(self.admission.watch(), name="admission"))
        await stop.wait()
        log.info("stopping: no new work; finishing in-flight turns", extra={"worker": self.worker_id})
        self._stopping.set()
        self.admission.close()
        _, pending = await asyncio.wait([*work, *self._fast, *polling], timeout=self.options.drain_timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # Set rather than cancel: redis-py may turn a cancellation inside a command into a
        # connection error, which the loop would take for a Redis outage and carry on.
        self._closed.set()
        await asyncio.wait(liveness, timeout=10)
        for tenant in self.tenants:
            try:
                await tenant.queue.retire()
            except QueueError as exc:
                log.warning("could not hand back held updates; others reclaim them",
                            extra={"business_id": tenant.business_id, "error": str(exc)})
        log.info("worker stopped", extra={"worker": self.worker_id, "counts": dict(self.counts),
                                          **self.admission.summary()})

    async def _payments(self, tenant: Tenant) -> None:
        from chatpay.worker.payments import poll_forever, usdc_poller

        runtime = await self.runtimes.get(tenant.business_id)
        poller = usdc_poller(runtime, tenant.queue, tenant.queue.client)
        if poller is not None:
            await poll_forever(poller, self._stopping, self.options.usdc_poll)

    async def _sweep(self) -> None:
        """One sweep of stale orders for every business (they share the order store)."""
        from chatpay.worker.payments import sweep_forever

        runtime = await self.runtimes.get(self.tenants[0].business_id)
        await sweep_forever(SimpleNamespace(stores=runtime.stores, clock=runtime.clock), self._stopping)

    async def _until_reachable(self, step: Any, stop: asyncio.Event) -> None:
        backoff = Backoff(most=5.0)
        while not stop.is_set():
            try:
                await step()
                return
            except QueueError as exc:
                log.warning("redis unreachable; retrying", extra={"error": str(exc)})
                await backoff.wait()

    async def _liveness(self, tenant: Tenant) -> None:
        backoff = Backoff()
        interval = max(self.options.heartbeat_ttl / 3, 0.05)
        queue = tenant.queue
        while not self._closed.is_set():
            try:
                await queue.heartbeat()
                await queue.reap()
                await queue.recover_orphans()
                if self.metrics is not None:
                    depth = await queue.depth()
                    self.metrics.set_queue_depth(tenant.business_id, sum(depth[k] for k in ("inbound", "staging",
                                                                                            "lanes", "fast")))
                backoff.reset()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), interval)
            except QueueError as exc:
                log.warning("heartbeat failed; retrying", extra={"business_id": tenant.business_id, "error": str(exc)})
                await backoff.wait()

    async def _route(self, tenant: Tenant) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                if await tenant.queue.route() == 0:
                    await tenant.queue.wait_inbound(self.options.poll)
                backoff.reset()
            except QueueError as exc:
                log.warning("routing failed; retrying", extra={"business_id": tenant.business_id, "error": str(exc)})
                await backoff.wait()

    async def _reserve(self, index: int, turn: int) -> tuple[Tenant, Delivery] | None:
        """The next update for slot ``index``: the least busy business first, without waiting; then wait on one.

        Businesses are tried in order of the turns this process has in flight for each (fewest
        first; ties rotate with ``index`` and ``turn``), so a free slot goes to a business with
        work and few turns running before one with many. A flooding business whose turns wait on
        its own bot's send limit would otherwise fill every slot as they free up, and a business
        behind it in the list would get a slot only now and then. When nothing is ready the slot
        blocks on the least busy business's ready list; the slots spread over the businesses so
        that every business has slots waiting on it (with fewer slots than businesses, briefly).
        """
        n = len(self.tenants)
        if n == 1:
            tenant = self.tenants[0]
            delivery = await tenant.queue.reserve(self.options.poll)
            return (tenant, delivery) if delivery is not None else None
        first = (index + turn) % n
        rotated = self.tenants[first:] + self.tenants[:first]
        order = sorted(rotated, key=lambda t: self._inflight[t.business_id])  # stable: ties keep the rotation
        for tenant in order:
            delivery = await tenant.queue.reserve(None)
            if delivery is not None:
                return tenant, delivery
        tenant = order[0]
        wait = self.options.poll if self.options.concurrency >= n else min(self.options.poll, 0.1)
        delivery = await tenant.queue.reserve(wait)
        return (tenant, delivery) if delivery is not None else None

    async def _slot(self, index: int = 0) -> None:
        backoff = Backoff()
        turn = 0
        while not self._stopping.is_set():
            turn += 1
            # Admitted before taking an update: while this process's CPU is the limit, the backlog waits
            # in Redis, where the next slot goes to the least busy business (chatpay.worker.admission).
            if not await self.admission.acquire():
                return
            try:
                ok = await self._take_and_serve(index, turn, backoff)
            finally:
                self.admission.release()
            if not ok:
                await backoff.wait()

    async def _take_and_serve(self, index: int, turn: int, backoff: Backoff) -> bool:
        """Reserve an update and serve it; False when the queue or the turn failed (the slot backs off)."""
        try:
            taken = await self._reserve(index, turn)
        except QueueError as exc:
            log.warning("reserve failed; retrying", extra={"error": str(exc)})
            return False
        backoff.reset()
        if taken is None:
            return True
        business_id = taken[0].business_id
        self._inflight[business_id] += 1
        try:
            return await self.serve(*taken)
        finally:
            self._inflight[business_id] -= 1

    async def _fast_lane(self, tenant: Tenant) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                delivery = await tenant.queue.reserve_fast(self.options.poll)
                backoff.reset()
            except QueueError as exc:
                log.warning("reserve failed; retrying", extra={"business_id": tenant.business_id, "error": str(exc)})
                await backoff.wait()
                continue
            if delivery is not None:
                task = asyncio.create_task(self.serve(tenant, delivery))
                self._fast.add(task)
                task.add_done_callback(self._fast.discard)

    # ------------------------------------------------------------------ one update

    async def serve(self, tenant: Tenant, delivery: Delivery) -> bool:
        """Handle one delivery to its end; False when a store, the queue or the Bot API was unreachable."""
        queue = tenant.queue
        where = {"worker": queue.worker_id, "business_id": tenant.business_id, "lane": delivery.receipt.lane,
                 "attempt": delivery.attempts}
        started = time.perf_counter()
        try:
            status = await self.handle(tenant, delivery)
            self._count(status)
            self._observe(tenant, status, started)
            return True
        except asyncio.CancelledError:
            await self._quietly(queue.release(delivery))
            raise
        except RetryAfter as exc:
            log.warning("Telegram asks us to wait; the update goes back", extra={**where, "retry_after": exc.retry_after})
            if self.metrics is not None:
                self.metrics.telegram_rate_limited(tenant.business_id)
            await self._quietly(queue.release(delivery))
            return False
        except Exception as exc:
            if transient(exc):
                # An outage (Redis, MongoDB, the Bot API) is not the update's fault: it goes back and is
                # tried again after a backoff, however long the outage lasts. Dead letters are for poison.
                log.warning("store, queue or Bot API unreachable; the update goes back",
                            extra={**where, "error": str(exc)})
                self._count("retried")
                await self._quietly(queue.release(delivery))
                return False
            reason = f"{type(exc).__name__}: {exc}"
            log.error("turn failed", exc_info=not isinstance(exc, ChatPayError), extra={**where, "error": reason})
            dead = await self._quietly(queue.fail(delivery, reason))
            self._count("dead" if dead else "failed")
            self._observe(tenant, "dead" if dead else "failed", started)
            if dead and delivery.receipt.kind == "fast":
                await self._refuse_pre_checkout(tenant, delivery)
            return True

    def _observe(self, tenant: Tenant, status: str, started: float) -> None:
        if self.metrics is None:
            return
        self.metrics.turn(tenant.business_id, status, time.perf_counter() - started)
        if status == "dead":
            self.metrics.dead_letter(tenant.business_id)

    async def _quietly(self, call: Any) -> Any:
        try:
            return await call
        except ChatPayError as exc:  # the lane stays ours: orphan recovery or a reaper hands it back
            log.warning("queue bookkeeping failed", extra={"error": str(exc)})
            return None

    async def handle(self, tenant: Tenant, delivery: Delivery) -> str:
        """Parse, run or replay, deliver, acknowledge. Returns what happened (for counts)."""
        queue = tenant.queue
        try:
            turn = parse_raw(delivery.raw, business_id=tenant.business_id, turn_id=new_turn_id())
        except InvalidInput as exc:
            log.error("malformed update dead-lettered", extra={"worker": queue.worker_id,
                                                               "business_id": tenant.business_id, "error": str(exc)})
            await queue.dead_letter(delivery, f"invalid update: {exc}")
            return "dead"
        if turn is None or turn.update_id is None:
            await queue.ack(delivery)
            return "ignored"
        where = {"worker": queue.worker_id, "business_id": turn.business_id, "thread_id": turn.thread_id,
                 "turn_id": turn.turn_id, "update_id": turn.update_id}
        turns = await self._turns(tenant)
        outcome = await turns.outcome(turn.business_id, turn.update_id)
        status = "replayed"
        if outcome is None:
            if not await turns.claim(turn.business_id, turn.update_id, turn.turn_id):
                log.warning("update claimed before without an outcome; running it again", extra=where)
            runtime = await self.runtimes.get(tenant.business_id)
            outcome = await self._run(turn, runtime, queue.fence(delivery))
            if outcome is None:
                log.warning("update taken over by another worker; leaving it", extra=where)
                return "fenced"
            status = "done"
        else:
            log.info("update seen before; replaying its recorded outcome", extra=where)
        await self._deliver(turn, outcome, tenant, turns)
        if not await queue.ack(delivery):
            log.warning("update was reclaimed before its acknowledgement", extra=where)
        return status

    async def _run(self, turn: Turn, runtime: Runtime, fence: tuple[str, str]) -> dict[str, Any] | None:
        assert turn.update_id is not None
        typing = None
        tenant = self._tenant_of(turn.business_id)
        if turn.payment is None and turn.chat_id:
            typing = asyncio.create_task(self._typing(turn.chat_id, tenant.channel))
        try:
            journal = self._journal(runtime)
            if journal is not None:
                return await self._run_journalled(turn, runtime, journal)
            staged = StagedTurn(self.state, runtime.stores) if self.state is not None else None
            service = runtime.service
            if staged is not None:
                service = TurnService(stores=staged.stores, engine=runtime.engine, clock=runtime.clock)
            result = await service.handle(turn)
            outcome = self._outcome(turn, result, runtime)
            if staged is None:
                await runtime.stores.turns.record_outcome(turn.business_id, turn.update_id, outcome)
                return outcome
            status = await staged.commit(turn.business_id, turn.update_id, outcome, fence=fence)
            if status == "fenced":
                return None
            if status == "duplicate":  # a worker presumed dead committed it first: replay that one
                assert self.state is not None
                return await self.state.turns.outcome(turn.business_id, turn.update_id)
            return outcome
        finally:
            if typing is not None:
                typing.cancel()

    async def _run_journalled(self, turn: Turn, runtime: Runtime, journal: MongoJournal) -> dict[str, Any] | None:
        """MongoDB: the turn's writes are journalled with its outcome and applied exactly once.

        A redelivered update finds the journal and finishes applying it (each write is
        idempotent) instead of running the turn again (:mod:`chatpay.adapters.mongo.journal`).
        """
        assert turn.update_id is not None
        staged = journal.stage(runtime.stores, meter=runtime.engine.meter)
        service = TurnService(stores=staged.stores, engine=runtime.engine, clock=runtime.clock)
        with staged.active():  # the meter's usage records go into the journal too
            result = await service.handle(turn)
        outcome = self._outcome(turn, result, runtime)
        status = await staged.commit(turn.business_id, turn.update_id, outcome)
        runtime.flush()  # the embedded file store keeps what the commit wrote; a no-op on MongoDB
        if status == "duplicate":  # a run presumed dead committed first; outcome() finishes its journal
            return await journal.outcome(turn.business_id, turn.update_id)
        return outcome

    def _tenant_of(self, business_id: str) -> Tenant:
        for tenant in self.tenants:
            if tenant.business_id == business_id:
                return tenant
        raise KeyError(business_id)

    def _outcome(self, turn: Turn, result: TurnResult, runtime: Runtime) -> dict[str, Any]:
        if self.metrics is not None:
            for usage in result.usage or []:
                if usage.kind != "offline":
                    self.metrics.model_call(turn.business_id, usage.model, prompt_tokens=usage.prompt_tokens,
                                            completion_tokens=usage.completion_tokens, cost_usd=usage.cost_usd)
        reply = result.reply
        pre_checkout = turn.payment is not None and turn.payment.kind == "pre_checkout"
        messages = [] if pre_checkout else runtime.presenter.render(turn.chat_id or turn.thread_id, reply)
        return {
            "turn_id": turn.turn_id, "thread_id": turn.thread_id, "chat_id": turn.chat_id or turn.thread_id,
            "intent": result.intent, "error": result.error, "sent": 0,
            "messages": [{"method": m.method, "params": dict(m.params)} for m in messages],
            "callback": {"id": turn.callback_query_id, "text": reply.callback_answer, "answered": False}
            if turn.callback_query_id else None,
            "pre_checkout": {"id": turn.payment.query_id, "ok": bool(reply.data.get("pre_checkout_ok")),
                             "error": reply.data.get("error"), "answered": False}
            if pre_checkout and turn.payment is not None else None,
        }

    async def _deliver(self, turn: Turn, outcome: dict[str, Any], tenant: Tenant, turns: TurnStore) -> None:
        """Send what the outcome holds and was not sent yet, recording each step as it succeeds."""
        assert turn.update_id is not None
        channel = tenant.channel

        async def progress() -> None:
            await turns.record_outcome(turn.business_id, turn.update_id or 0, outcome)

        pre = outcome.get("pre_checkout")
        if pre and not pre.get("answered"):
            try:
                await channel.answer_pre_checkout(pre["id"], bool(pre["ok"]), pre.get("error"))
            except (RetryAfter, ChannelUnavailable):
                raise
            except ChannelError as exc:
                # Answered already (a duplicate delivery) or past Telegram's 10 s: retrying cannot help.
                log.warning("pre-checkout answer refused", extra={"update_id": turn.update_id, "error": str(exc)})
            pre["answered"] = True
            await progress()
        callback = outcome.get("callback")
        if callback and not callback.get("answered"):
            await channel.answer_callback(callback["id"], callback.get("text"))
            callback["answered"] = True
            await progress()
        messages = outcome.get("messages") or []
        for i in range(int(outcome.get("sent") or 0), len(messages)):
            message = messages[i]
            await channel.send(str(outcome["chat_id"]), [OutgoingMessage(message["method"], message["params"])])
            outcome["sent"] = i + 1
            if self.metrics is not None:
                self.metrics.send(tenant.business_id)
            await progress()

    async def _typing(self, chat_id: str, channel: BotChannel) -> None:
        """Show the typing action while a slow turn runs; a quick reply needs none (and saves Bot API calls)."""
        await asyncio.sleep(self.options.typing_after)
        while True:
            try:
                await channel.send_typing(chat_id)
            except ChatPayError:
                pass  # only a courtesy
            await asyncio.sleep(self.options.typing_interval)

    async def _refuse_pre_checkout(self, tenant: Tenant, delivery: Delivery) -> None:
        """A pre-checkout we could not process is still answered, with a refusal, never left hanging."""
        try:
            turn = parse_raw(delivery.raw, business_id=tenant.business_id, turn_id=new_turn_id())
            if turn is not None and turn.payment is not None and turn.payment.query_id:
                await tenant.channel.answer_pre_checkout(
                    turn.payment.query_id, False, "Sorry, we could not confirm this order. Please try again.")
        except ChatPayError as exc:
            log.warning("pre-checkout refusal not sent", extra={"error": str(exc)})
