"""Start a real three-master Redis Cluster on free loopback ports for tests, and stop it by pid.

Three ``redis-server --cluster-enabled yes`` processes keep nothing on disk (``--save ''
--appendonly no``; their ``nodes-<port>.conf`` lives in a temporary directory), then
``redis-cli --cluster create ... --cluster-replicas 0`` shares the 16384 slots among them and
the cluster is used once every node reports ``cluster_state:ok``. Use the class as a context
manager, or the module-scoped fixture ``redis_cluster``::

    from tests.support.redis_cluster import redis_cluster  # noqa: F401  (fixture)

    async def test_something(redis_cluster: LocalCluster) -> None:
        redis_cluster.flushall()
        client = connect(redis_cluster.url, cluster=True)

:class:`RedisUrl` is a URL string that says whether it is a cluster's, so a fixture can be
parametrized over one server and a cluster and still hand tests a plain ``str``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from types import TracebackType

import pytest

from tests.support.redis_server import REDIS_SERVER, _command, free_port

REDIS_CLI = shutil.which("redis-cli")
NODES = 3


class RedisUrl(str):
    """A Redis URL that knows whether it points at a cluster (``connect(url, cluster=url.cluster)``)."""

    cluster: bool

    def __new__(cls, url: str, *, cluster: bool) -> RedisUrl:
        made = super().__new__(cls, url)
        made.cluster = cluster
        return made


def is_cluster(url: str) -> bool:
    """True for a :class:`RedisUrl` of a cluster; False for any other URL."""
    return bool(getattr(url, "cluster", False))


def _info(port: int, section: str) -> str:
    """The reply of ``INFO``/``CLUSTER INFO`` as text (a bulk string), read to its end."""
    import socket

    args = section.split()
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
        sock.sendall(payload.encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith(b"$"):
                head, _, rest = data.partition(b"\r\n")
                if len(rest) >= int(head[1:]) + 2:
                    return rest[: int(head[1:])].decode()
            elif data.endswith(b"\r\n"):
                return data.decode()
    return data.decode()


class LocalCluster:
    """A private three-master Redis Cluster on 127.0.0.1.

    Attributes:
        ports: The nodes' ports (set by ``start``).
        pids: The nodes' process ids (set by ``start``), used to stop them.
    """

    def __init__(self, nodes: int = NODES) -> None:
        self.nodes = nodes
        self.ports: list[int] = []
        self.pids: list[int] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dir = ""

    @property
    def url(self) -> RedisUrl:
        """The first node's URL; a cluster client discovers the others from it."""
        return RedisUrl(f"redis://127.0.0.1:{self.ports[0]}/0", cluster=True)

    def start(self, timeout: float = 30.0) -> LocalCluster:
        """Start the nodes, create the cluster and wait until every node says ``cluster_state:ok``.

        Raises:
            RuntimeError: redis-server or redis-cli is missing, or the cluster never became ready.
        """
        if REDIS_SERVER is None or REDIS_CLI is None:
            raise RuntimeError("redis-server and redis-cli are needed (apt-get install redis-server)")
        self._dir = tempfile.mkdtemp(prefix="chatpay-cluster-")
        try:
            for _ in range(self.nodes):
                self._start_node(timeout)
            created = subprocess.run(
                [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, text=True, timeout=timeout)
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {(created.stdout + created.stderr)[-500:]}")
            deadline = time.monotonic() + timeout
            while not all("cluster_state:ok" in _info(p, "CLUSTER INFO") for p in self.ports):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster did not reach cluster_state:ok within {timeout}s")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, timeout: float) -> None:
        assert REDIS_SERVER is not None
        last_error = ""
        for _attempt in range(5):  # the free port can be taken between probe and bind
            port = free_port()
            proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", os.path.join(self._dir, f"nodes-{port}.conf"), "--save", "",
                 "--appendonly", "no", "--dir", self._dir, "--protected-mode", "no", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    last_error = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
                    break
                try:
                    if _command(port, "PING").startswith(b"+PONG"):
                        self._procs.append(proc)
                        self.ports.append(port)
                        self.pids.append(proc.pid)
                        return
                except OSError:
                    pass
                time.sleep(0.02)
            else:
                self._kill(proc)
                raise RuntimeError(f"redis-server (cluster node) did not answer PING within {timeout}s")
            self._kill(proc)
        raise RuntimeError(f"a cluster node failed to start: {last_error.strip()[-300:]}")

    def flushall(self) -> None:
        """Empty every node (each holds its own slots' keys)."""
        for port in self.ports:
            _command(port, "FLUSHALL")

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()

    def stop(self) -> None:
        """Stop every node by pid (SIGTERM, then SIGKILL) and remove the directory."""
        procs, self._procs = self._procs, []
        for proc in procs:
            self._kill(proc)
        self.ports, self.pids = [], []
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = ""

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[LocalCluster]:
    """A real three-master Redis Cluster for the test module; skipped only when Redis is not installed."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server and redis-cli are not installed on this machine")
    with LocalCluster() as cluster:
        yield cluster
