"""The Bot API's HTTP client for production sends: python-telegram-bot's request port over aiohttp.

python-telegram-bot talks HTTP through a :class:`~telegram.request.BaseRequest`; its own is httpx.
At a worker's concurrency, httpx's connection pool scans every connection for every request, and
in ``bench/bench_fleet.py`` the sends alone took about a third of a worker's CPU per turn.
aiohttp's connector (already ours: the webhook serves on aiohttp) hands out connections in
constant time. PTB keeps doing everything above HTTP: parameters, retries of its own, the
error types (:class:`~telegram.error.TimedOut`, :class:`~telegram.error.NetworkError`) that
:class:`~chatpay.adapters.telegram.TelegramChannel` classifies.

Timeouts follow PTB's four: ``connect`` waits for a free pooled connection and for the TCP
connect (aiohttp's ``connect`` covers both), ``read`` bounds each socket read, and ``write``
bounds the whole request when it uploads files (aiohttp has no separate write timer).
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_TOKEN_IN_URL = re.compile(r"bot[0-9]+:[A-Za-z0-9_-]+")


def _given(value: Any, default: float | None) -> float | None:
    """PTB passes ``DEFAULT_NONE`` for "use your default"; anything else (``None`` included) is meant."""
    return default if value is BaseRequest.DEFAULT_NONE else value


class AiohttpRequest(BaseRequest):
    """A pooled aiohttp session for one bot: ``connections`` at most, kept alive between sends."""

    def __init__(self, *, connections: int = 16, read_timeout: float | None = 30.0,
                 write_timeout: float | None = 30.0, connect_timeout: float | None = 10.0,
                 pool_timeout: float | None = 30.0) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        self.connections = connections
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=self.connections,
                                             enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = BaseRequest.DEFAULT_NONE,
                         write_timeout: Any = BaseRequest.DEFAULT_NONE,
                         connect_timeout: Any = BaseRequest.DEFAULT_NONE,
                         pool_timeout: Any = BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            await self.initialize()  # PTB's httpx request needs no initialize() either: callers skip it
        assert self._session is not None
        read = _given(read_timeout, self._read)
        connect = _given(connect_timeout, self._connect)
        pool = _given(pool_timeout, self._pool)
        files = request_data.multipart_data if request_data is not None else None
        fields = request_data.json_parameters if request_data is not None else None
        waiting = None if connect is None or pool is None else connect + pool
        total = _given(write_timeout, self._write) if files else None
        if total is not None and read is not None:
            total += read  # the upload's write time plus the answer's read time
        timeout = aiohttp.ClientTimeout(total=total, connect=waiting, sock_connect=connect, sock_read=read)
        data: Any = fields
        if files:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, part in files.items():
                if isinstance(part, tuple):
                    filename, content, *rest = part
                    form.add_field(name, content, filename=filename, content_type=rest[0] if rest else None)
                else:
                    form.add_field(name, part)
            data = form
        try:
            async with self._session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimedOut(f"the Bot API did not answer in time ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            # Some client errors quote the URL, which holds the bot's token.
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {_TOKEN_IN_URL.sub('bot<token>', str(exc))}") from exc
