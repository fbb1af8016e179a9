"""Start a real ``redis-server`` on a free loopback port for a test, and stop it by pid.

The server keeps nothing on disk (``--save "" --appendonly no``) and works in a temporary
directory. Use the class as a context manager in a module-local fixture::

    @pytest.fixture(scope="module")
    def redis_server() -> Iterator[RedisServer]:
        with RedisServer() as server:
            yield server

    async def test_something(redis_server: RedisServer) -> None:
        redis_server.flushall()
        client = redis.asyncio.Redis.from_url(redis_server.url)

or import the fixtures below (``redis_server``, module-scoped; ``redis_url``, function-scoped,
flushing every database first); ruff then reports F811 where they are used.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from types import TracebackType

import pytest

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int, *args: str, timeout: float = 1.0) -> bytes:
    """Send one RESP command over a plain socket and return the raw first reply line."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"".join(parts))
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


class RedisServer:
    """A private ``redis-server`` process on 127.0.0.1.

    Attributes:
        port: The port it listens on (set by ``start``).
        pid: The process id (set by ``start``), used to stop it.
    """

    def __init__(self, *, extra_args: tuple[str, ...] = ()) -> None:
        self.port = 0
        self.pid = 0
        self._extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = ""

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING.

        Raises:
            RuntimeError: redis-server is missing or never became ready.
        """
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self._dir = tempfile.mkdtemp(prefix="chatpay-redis-")
        last_error = ""
        for _attempt in range(5):  # the free port can be taken between probe and bind
            self.port = free_port()
            self._proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self._dir, "--protected-mode", "no",
                 "--loglevel", "warning", *self._extra_args],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            self.pid = self._proc.pid
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    last_error = (self._proc.stderr.read() if self._proc.stderr else b"").decode(errors="replace")
                    break
                try:
                    if _command(self.port, "PING").startswith(b"+PONG"):
                        return self
                except OSError:
                    pass
                time.sleep(0.02)
            else:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING within {timeout}s")
        self.stop()
        raise RuntimeError(f"redis-server failed to start: {last_error.strip()[-300:]}")

    def flushall(self) -> None:
        """Empty every database."""
        _command(self.port, "FLUSHALL")

    def stop(self) -> None:
        """Stop the server by pid (SIGTERM, then SIGKILL) and remove its directory."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = ""

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the test module; skipped only when redis-server is not installed."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed on this machine")
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the module's redis-server, emptied for this test."""
    redis_server.flushall()
    return redis_server.url
