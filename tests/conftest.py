"""Shared test set-up: a clean environment and no network beyond this machine."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

import pytest

_KEEP = {"TEXTUAL_SNAPSHOT_TEMPDIR", "PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "TERM", "COLUMNS", "LINES",
         "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CI", "CHATPAY_TEST_MONGODB_URI", "SYSTEMROOT"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test starts with no ChatPay, OpenAI, Mongo, Redis or Telegram settings, and no .env."""
    for name in list(os.environ):
        if name not in _KEEP:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    # The embedded default keeps its data here, per test, never in the user's data directory;
    # commands a test starts inherit it.
    monkeypatch.setenv("CHATPAY_DATA_DIR", str(tmp_path_factory.mktemp("data")))


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host)
    if host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that would reach beyond loopback (real model APIs, Telegram, ...)."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host):
            raise RuntimeError(f"test tried to resolve a remote host: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
