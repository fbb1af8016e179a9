"""The webhook's listening socket: a connection cap, header timeouts and a deep accept queue.

aiohttp has no header-read timeout and no cap on open connections, so ``chatpay webhook`` serves
its :class:`~aiohttp.web.AppRunner` through :class:`Listener`, whose :class:`GuardedConnection`
counts every connection against :attr:`Limits.max_connections` (503 and closed over it) and
closes one that is too slow to send its headers. :func:`connection_timers` is the application's
middleware that tells a connection's guard when its headers are in and when its request ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

DEFAULT_MAX_CONNECTIONS = 2000
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
FD_RESERVE = 64
"""File descriptors kept out of the connection cap: stdio, the listening socket, the event loop, logs."""
ACCEPT_BATCH = 32
"""Connections the event loop accepts in one go. asyncio accepts up to its ``backlog`` argument per
wake-up, holding a descriptor for each before any is answered, so a batch must fit beside the open
connections: with the batch equal to a 2048-deep backlog, a burst of 300 under a limit of 256
descriptors hit EMFILE, and asyncio stopped accepting for a second at a time (a CI run's client
waited over 30 s). The kernel's queue stays deep (:attr:`Limits.backlog`); only the batch is small."""
LINGER = 1.0
"""Seconds the server keeps reading an unread request body after answering (403, 408) before closing."""
_OVER_CAPACITY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n"
                  b"Retry-After: 1\r\nConnection: close\r\n\r\nover capacity\r\n")


@dataclass(frozen=True)
class Limits:
    """How many client connections the webhook holds, and how long each may take to send a request.

    Attributes:
        max_connections: Open client connections at most; the next one is answered 503 and closed.
        header_timeout: Seconds from a connection's opening (or the end of its previous request)
            to the end of the request's headers; a slow client is disconnected after it.
        body_timeout: Seconds from the end of the headers to the end of the body (then 408).
    """

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT

    @property
    def backlog(self) -> int:
        """The listen backlog: a burst waits in the kernel instead of being dropped (the kernel still
        clamps it to ``net.core.somaxconn``). Deeper than the cap, since the cap counts accepted
        connections: with a backlog of 128 under a cap of 128, a burst of 300 lost SYNs to a full
        queue under load, and a client's retransmission (1, 3, 7 s later) made its request take over
        8 s (tests/test_webhook.py, the low-file-limit test, in a loaded CI run). 2048 is uvicorn's
        and gunicorn's default; queued connections hold no descriptor of ours."""
        return max(2048, self.max_connections)

    def problems(self) -> list[str]:
        """What is wrong with these limits, as ``--option: reason`` lines."""
        found = []
        if self.max_connections < 1:
            found.append(f"--max-connections must be at least 1, got {self.max_connections}")
        for name, value in (("--header-timeout", self.header_timeout), ("--body-timeout", self.body_timeout)):
            if not value > 0:
                found.append(f"{name} must be a positive number of seconds, got {value:g}")
        return found


@web.middleware
async def connection_timers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tell the connection's guard (when it has one) that its headers are in, and when the request ends."""
    transport = request.transport
    guarded = transport.get_protocol() if transport is not None else None
    if not isinstance(guarded, GuardedConnection):  # e.g. under aiohttp's TestServer: no guard
        return await handler(request)
    guarded.request_started()
    try:
        return await handler(request)
    finally:
        guarded.request_finished()


class GuardedConnection(asyncio.Protocol):
    """One client connection: counted against the cap, and closed when it is too slow to send headers.

    aiohttp has no header-read timeout (its keep-alive timer does not cover a request that has
    begun), so a client that sends half its headers and stops holds a connection and a file
    descriptor for as long as it likes. This wrapper sits between the event loop and aiohttp's
    own protocol (which it forwards everything to): a timer runs from the connection's opening,
    and from the end of each request, until the application sees the next request's headers
    (:func:`connection_timers` tells it); when it fires the connection is closed. An idle
    keep-alive connection is closed the same way, as Go's ``ReadHeaderTimeout`` does without an
    ``IdleTimeout``. Over the cap, the connection is answered 503 and closed at once.
    """

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        listener = self._listener
        if listener.open >= listener.limits.max_connections:
            listener.refused += 1
            transport.write(_OVER_CAPACITY)
            transport.close()
            return
        listener.open += 1
        self._inner = listener.server()
        self._inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._disarm()
        if self._inner is not None:
            self._listener.open -= 1
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def request_started(self) -> None:
        """The headers are in: the body's own timeout (in the handler) takes over."""
        self._disarm()

    def request_finished(self) -> None:
        """The next request's headers must arrive within the header timeout."""
        if not self._lost:
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._listener.limits.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or self._lost:
            return
        self._listener.timed_out += 1
        transport.close()
        # close() waits for buffered output; a client that reads nothing must not keep the socket
        asyncio.get_running_loop().call_later(1.0, self._abort)

    def _abort(self) -> None:
        if not self._lost and self._transport is not None:
            self._transport.abort()


class Listener:
    """The webhook's listening socket, serving an :class:`~aiohttp.web.AppRunner` through guarded connections.

    Use after ``await runner.setup()``; :meth:`stop` before ``await runner.cleanup()`` (which
    closes the connections still open). ``open``, ``refused`` and ``timed_out`` count the
    connections open now, refused over the cap and closed for slowness.
    """

    def __init__(self, runner: web.AppRunner, host: str, port: int, limits: Limits) -> None:
        if runner.server is None:
            raise RuntimeError("call runner.setup() before listening")
        self.server: web.Server = runner.server
        self.host, self.port, self.limits = host, port, limits
        self.open = self.refused = self.timed_out = 0
        self._listening: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and listen; ``port`` 0 picks a free port (``self.port`` then says which).

        Raises:
            OSError: The address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        # asyncio uses its backlog both for listen() and as the accept batch: a small batch for it, then
        # the deep kernel queue set again on our own socket (listen() may be called again).
        family = socket.getaddrinfo(self.host or None, self.port, type=socket.SOCK_STREAM,
                                    flags=socket.AI_PASSIVE)[0][0]
        raw = socket.create_server((self.host, self.port), family=family, backlog=self.limits.backlog)
        try:
            self._listening = await loop.create_server(lambda: GuardedConnection(self), sock=raw,
                                                       backlog=min(ACCEPT_BATCH, self.limits.backlog))
        except BaseException:
            raw.close()
            raise
        raw.listen(self.limits.backlog)
        if self.port == 0:
            self.port = int(self._listening.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting connections (those open are left to ``runner.cleanup()``)."""
        if self._listening is not None:
            self._listening.close()
            self._listening = None


@contextlib.asynccontextmanager
async def listening(app: web.Application, host: str = "127.0.0.1", port: int = 0,
                    limits: Limits | None = None) -> AsyncIterator[Listener]:
    """Serve ``app`` on ``host:port`` with guarded connections until the block ends (tests, embedding)."""
    runner = web.AppRunner(app, lingering_time=LINGER)
    await runner.setup()
    listener = Listener(runner, host, port, limits or Limits())
    try:
        await listener.start()
        yield listener
    finally:
        await listener.stop()
        await runner.cleanup()
