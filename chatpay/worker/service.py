"""The worker's loops and the life of one update, from the queue to Telegram and back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any, Protocol

from chatpay.adapters.redis import RedisQueue, RedisStateStores, StagedTurn
from chatpay.bootstrap import Runtime
from chatpay.core.errors import ChannelError, ChatPayError, InvalidInput, QueueError, RetryAfter
from chatpay.core.ports import Delivery, OutgoingMessage, TurnStore
from chatpay.core.service import TurnResult, TurnService, new_turn_id
from chatpay.core.turns import Turn
from chatpay.core.updates import parse_raw

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class WorkerOptions:
    """How one worker process behaves; every field has a ``chatpay-worker`` option."""

    concurrency: int = DEFAULT_CONCURRENCY
    heartbeat_ttl: float = 15.0
    drain_timeout: float = 60.0
    poll: float = 1.0
    typing_after: float = 0.5
    typing_interval: float = 4.0
    state_store: str = "auto"
    usdc_poll: float = 10.0  # seconds between looks for USDC transfers (Solana confirms in about one)


class BotChannel(Protocol):
    """What the worker needs from the Telegram channel (``TelegramChannel`` satisfies it)."""

    async def send(self, chat_id: str, messages: list[OutgoingMessage]) -> None: ...

    async def answer_callback(self, callback_query_id: str, text: str | None = None) -> None: ...

    async def send_typing(self, chat_id: str) -> None: ...

    async def answer_pre_checkout(self, query_id: str, ok: bool, error_message: str | None = None) -> None: ...


def transient(exc: BaseException) -> bool:
    """True for a store or queue that could not be reached (retry later, never count it)."""
    from pymongo.errors import ConnectionFailure
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (QueueError, ConnectionError, TimeoutError, BusyLoadingError, ConnectionFailure,
                             OSError)):
            return True
        seen = seen.__cause__
    return False


class Backoff:
    """Exponential backoff with jitter, reset by any success."""

    def __init__(self, first: float = 0.1, most: float = 5.0) -> None:
        self.first, self.most, self.current = first, most, first

    def reset(self) -> None:
        self.current = self.first

    async def wait(self) -> None:
        await asyncio.sleep(self.current * random.uniform(0.5, 1.0))
        self.current = min(self.current * 2, self.most)


class Worker:
    """Serves the queue with ``options.concurrency`` turns in flight.

    Args:
        runtime: the wired ChatPay (its presenter renders, its engine runs the turns).
        queue: the Redis queue, named after this worker.
        channel: sends to Telegram.
        state: the shared Redis stores, when turns commit there atomically; None to run turns
            on ``runtime.stores`` (MongoDB).
    """

    def __init__(self, runtime: Runtime, queue: RedisQueue, channel: BotChannel, *,
                 state: RedisStateStores | None = None, options: WorkerOptions | None = None) -> None:
        self.runtime = runtime
        self.queue = queue
        self.channel = channel
        self.state = state
        self.options = options or WorkerOptions()
        self.turns: TurnStore = state.turns if state is not None else runtime.stores.turns
        self.business_id = runtime.settings.business_id
        self.counts: dict[str, int] = {}
        self._stopping = asyncio.Event()
        self._closed = asyncio.Event()
        self._fast: set[asyncio.Task[bool]] = set()

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # ------------------------------------------------------------------ loops

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then drain in-flight turns and hand back the rest."""
        await self._until_reachable(lambda: self.queue.heartbeat(register=True), stop)
        log.info("worker serving", extra={"worker": self.queue.worker_id, "queue": self.queue.name,
                                          "concurrency": self.options.concurrency,
                                          "state_store": "redis" if self.state else "runtime"})
        liveness = asyncio.create_task(self._liveness(), name="liveness")
        work = [asyncio.create_task(self._route(), name="router"), asyncio.create_task(self._fast_lane(), name="fast")]
        work += [asyncio.create_task(self._slot(), name=f"slot-{i}") for i in range(self.options.concurrency)]
        from chatpay.worker.payments import poll_forever, sweep_forever, usdc_poller

        poller = usdc_poller(self.runtime, self.queue, self.queue.client)
        polling = ([asyncio.create_task(poll_forever(poller, self._stopping, self.options.usdc_poll), name="usdc")]
                   if poller else [])
        polling.append(asyncio.create_task(sweep_forever(self.runtime, self._stopping), name="order-sweep"))
        await stop.wait()
        log.info("stopping: no new work; finishing in-flight turns", extra={"worker": self.queue.worker_id})
        self._stopping.set()
        _, pending = await asyncio.wait([*work, *self._fast, *polling], timeout=self.options.drain_timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # Set rather than cancel: redis-py may turn a cancellation inside a command into a
        # connection error, which the loop would take for a Redis outage and carry on.
        self._closed.set()
        await asyncio.wait([liveness], timeout=10)
        try:
            await self.queue.retire()
        except QueueError as exc:
            log.warning("could not hand back held updates; others reclaim them", extra={"error": str(exc)})
        log.info("worker stopped", extra={"worker": self.queue.worker_id, "counts": dict(self.counts)})

    async def _until_reachable(self, step: Any, stop: asyncio.Event) -> None:
        backoff = Backoff(most=5.0)
        while not stop.is_set():
            try:
                await step()
                return
            except QueueError as exc:
                log.warning("redis unreachable; retrying", extra={"error": str(exc)})
                await backoff.wait()

    async def _liveness(self) -> None:
        backoff = Backoff()
        interval = max(self.options.heartbeat_ttl / 3, 0.05)
        while not self._closed.is_set():
            try:
                await self.queue.heartbeat()
                await self.queue.reap()
                await self.queue.recover_orphans()
                backoff.reset()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), interval)
            except QueueError as exc:
                log.warning("heartbeat failed; retrying", extra={"error": str(exc)})
                await backoff.wait()

    async def _route(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                if await self.queue.route() == 0:
                    await self.queue.wait_inbound(self.options.poll)
                backoff.reset()
            except QueueError as exc:
                log.warning("routing failed; retrying", extra={"error": str(exc)})
                await backoff.wait()

    async def _slot(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                delivery = await self.queue.reserve(self.options.poll)
                backoff.reset()
            except QueueError as exc:
                log.warning("reserve failed; retrying", extra={"error": str(exc)})
                await backoff.wait()
                continue
            if delivery is not None and not await self.serve(delivery):
                await backoff.wait()

    async def _fast_lane(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                delivery = await self.queue.reserve_fast(self.options.poll)
                backoff.reset()
            except QueueError as exc:
                log.warning("reserve failed; retrying", extra={"error": str(exc)})
                await backoff.wait()
                continue
            if delivery is not None:
                task = asyncio.create_task(self.serve(delivery))
                self._fast.add(task)
                task.add_done_callback(self._fast.discard)

    # ------------------------------------------------------------------ one update

    async def serve(self, delivery: Delivery) -> bool:
        """Handle one delivery to its end; False when the store or queue was unreachable."""
        where = {"worker": self.queue.worker_id, "lane": delivery.receipt.lane, "attempt": delivery.attempts}
        try:
            self._count(await self.handle(delivery))
            return True
        except asyncio.CancelledError:
            await self._quietly(self.queue.release(delivery))
            raise
        except RetryAfter as exc:
            log.warning("Telegram asks us to wait; the update goes back", extra={**where, "retry_after": exc.retry_after})
            await self._quietly(self.queue.release(delivery))
            return False
        except Exception as exc:
            if transient(exc):
                log.warning("store or queue unreachable; the update goes back", extra={**where, "error": str(exc)})
                self._count("retried")
                await self._quietly(self.queue.release(delivery))
                return False
            reason = f"{type(exc).__name__}: {exc}"
            log.error("turn failed", exc_info=not isinstance(exc, ChatPayError), extra={**where, "error": reason})
            dead = await self._quietly(self.queue.fail(delivery, reason))
            self._count("dead" if dead else "failed")
            if dead and delivery.receipt.kind == "fast":
                await self._refuse_pre_checkout(delivery)
            return True

    async def _quietly(self, call: Any) -> Any:
        try:
            return await call
        except ChatPayError as exc:  # the lane stays ours: orphan recovery or a reaper hands it back
            log.warning("queue bookkeeping failed", extra={"error": str(exc)})
            return None

    async def handle(self, delivery: Delivery) -> str:
        """Parse, run or replay, deliver, acknowledge. Returns what happened (for counts)."""
        try:
            turn = parse_raw(delivery.raw, business_id=self.business_id, turn_id=new_turn_id())
        except InvalidInput as exc:
            log.error("malformed update dead-lettered", extra={"worker": self.queue.worker_id, "error": str(exc)})
            await self.queue.dead_letter(delivery, f"invalid update: {exc}")
            return "dead"
        if turn is None or turn.update_id is None:
            await self.queue.ack(delivery)
            return "ignored"
        where = {"worker": self.queue.worker_id, "business_id": turn.business_id, "thread_id": turn.thread_id,
                 "turn_id": turn.turn_id, "update_id": turn.update_id}
        outcome = await self.turns.outcome(turn.business_id, turn.update_id)
        status = "replayed"
        if outcome is None:
            if not await self.turns.claim(turn.business_id, turn.update_id, turn.turn_id):
                log.warning("update claimed before without an outcome; running it again", extra=where)
            outcome = await self._run(turn, self.queue.fence(delivery))
            if outcome is None:
                log.warning("update taken over by another worker; leaving it", extra=where)
                return "fenced"
            status = "done"
        else:
            log.info("update seen before; replaying its recorded outcome", extra=where)
        await self._deliver(turn, outcome)
        if not await self.queue.ack(delivery):
            log.warning("update was reclaimed before its acknowledgement", extra=where)
        return status

    async def _run(self, turn: Turn, fence: tuple[str, str]) -> dict[str, Any] | None:
        assert turn.update_id is not None
        typing = None
        if turn.payment is None and turn.chat_id:
            typing = asyncio.create_task(self._typing(turn.chat_id))
        try:
            staged = StagedTurn(self.state, self.runtime.stores) if self.state is not None else None
            service = self.runtime.service
            if staged is not None:
                service = TurnService(stores=staged.stores, engine=self.runtime.engine, clock=self.runtime.clock)
            result = await service.handle(turn)
            outcome = self._outcome(turn, result)
            if staged is None:
                await self.turns.record_outcome(turn.business_id, turn.update_id, outcome)
                return outcome
            status = await staged.commit(turn.business_id, turn.update_id, outcome, fence=fence)
            if status == "fenced":
                return None
            if status == "duplicate":  # a worker presumed dead committed it first: replay that one
                return await self.turns.outcome(turn.business_id, turn.update_id)
            return outcome
        finally:
            if typing is not None:
                typing.cancel()

    def _outcome(self, turn: Turn, result: TurnResult) -> dict[str, Any]:
        reply = result.reply
        pre_checkout = turn.payment is not None and turn.payment.kind == "pre_checkout"
        messages = [] if pre_checkout else self.runtime.presenter.render(turn.chat_id or turn.thread_id, reply)
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

    async def _deliver(self, turn: Turn, outcome: dict[str, Any]) -> None:
        """Send what the outcome holds and was not sent yet, recording each step as it succeeds."""
        assert turn.update_id is not None

        async def progress() -> None:
            await self.turns.record_outcome(turn.business_id, turn.update_id or 0, outcome)

        pre = outcome.get("pre_checkout")
        if pre and not pre.get("answered"):
            try:
                await self.channel.answer_pre_checkout(pre["id"], bool(pre["ok"]), pre.get("error"))
            except RetryAfter:
                raise
            except ChannelError as exc:
                # Answered already (a duplicate delivery) or past Telegram's 10 s: retrying cannot help.
                log.warning("pre-checkout answer refused", extra={"update_id": turn.update_id, "error": str(exc)})
            pre["answered"] = True
            await progress()
        callback = outcome.get("callback")
        if callback and not callback.get("answered"):
            await self.channel.answer_callback(callback["id"], callback.get("text"))
            callback["answered"] = True
            await progress()
        messages = outcome.get("messages") or []
        for i in range(int(outcome.get("sent") or 0), len(messages)):
            message = messages[i]
            await self.channel.send(str(outcome["chat_id"]), [OutgoingMessage(message["method"], message["params"])])
            outcome["sent"] = i + 1
            await progress()

    async def _typing(self, chat_id: str) -> None:
        """Show the typing action while a slow turn runs; a quick reply needs none (and saves Bot API calls)."""
        await asyncio.sleep(self.options.typing_after)
        while True:
            try:
                await self.channel.send_typing(chat_id)
            except ChatPayError:
                pass  # only a courtesy
            await asyncio.sleep(self.options.typing_interval)

    async def _refuse_pre_checkout(self, delivery: Delivery) -> None:
        """A pre-checkout we could not process is still answered, with a refusal, never left hanging."""
        try:
            turn = parse_raw(delivery.raw, business_id=self.business_id, turn_id=new_turn_id())
            if turn is not None and turn.payment is not None and turn.payment.query_id:
                await self.channel.answer_pre_checkout(
                    turn.payment.query_id, False, "Sorry, we could not confirm this order. Please try again.")
        except ChatPayError as exc:
            log.warning("pre-checkout refusal not sent", extra={"error": str(exc)})
