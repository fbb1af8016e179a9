"""What a worker process is told and what it talks to: its options, its bot's port, and how it retries."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Protocol

from chatpay.core.errors import ChannelUnavailable, QueueError
from chatpay.core.ports import OutgoingMessage

DEFAULT_CONCURRENCY = 128
"""Turns in flight per process. A turn mostly waits (for the model, Redis, the Bot API), so one process
keeps many in flight. At 300 ms per model call, N slots serve at most N / 0.3 turns/s: 64 capped a
process at 213 and measured 146 in ``bench/bench_fleet.py``; 128 measured 211 to 238 (one process,
one redis-server, 2 CPUs), where the worker's CPU (about 4.4 ms a turn) becomes the limit; 256
measured less (155: more slots only queue on that CPU). At 16 it was 48."""


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
    cached_businesses: int = 32  # business runtimes (engine, indexes) kept in memory, least recently used out
    metrics_port: int | None = None  # serve /metrics, /healthz and /readyz on this port; None: not served
    metrics_host: str = "127.0.0.1"

    def redis_connections(self, businesses: int) -> int:
        """Redis connections this process may open: a blocking wait per slot, per business's router and
        fast lane, plus the turns' own commands; sized from the work so the pool never runs dry."""
        return 2 * self.concurrency + 4 * businesses + 16


class BotChannel(Protocol):
    """What the worker needs from the Telegram channel (``TelegramChannel`` satisfies it)."""

    async def send(self, chat_id: str, messages: list[OutgoingMessage]) -> None: ...

    async def answer_callback(self, callback_query_id: str, text: str | None = None) -> None: ...

    async def send_typing(self, chat_id: str) -> None: ...

    async def answer_pre_checkout(self, query_id: str, ok: bool, error_message: str | None = None) -> None: ...


def transient(exc: BaseException) -> bool:
    """True for a store, queue or channel that could not be reached (retry later, never count it)."""
    from pymongo.errors import ConnectionFailure
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (QueueError, ChannelUnavailable, ConnectionError, TimeoutError, BusyLoadingError,
                             ConnectionFailure, OSError)):
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
