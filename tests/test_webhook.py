"""The webhook on a real redis-server: secrets checked, raw updates enqueued intact, answers fast."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from chatpay.config import Settings
from chatpay.core.errors import ConfigError
from chatpay.webhook import ALLOWED_UPDATES, MAX_BODY, SECRET_HEADER, create_app, serve, set_webhook
from tests.support.botapi import BotApiDouble
from tests.support.redis_server import RedisServer, free_port

SECRET = "s3cret-Token_value"
TOKEN = "123456:BOT-token-value"
ROOT = Path(__file__).resolve().parents[1]
UPDATE = {"update_id": 1, "message": {"message_id": 1, "date": 1, "chat": {"id": 42, "type": "private"},
                                      "from": {"id": 42, "is_bot": False, "first_name": "Ana"},
                                      "text": "Meias 🧦 <b>&amp;</b> " + "ж" * 10_000}}
BODY = json.dumps(UPDATE, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture
def store(server: RedisServer) -> redis.Redis:
    server.flushall()
    return redis.Redis.from_url(server.url)


@pytest.fixture
async def client(server: RedisServer) -> AsyncIterator[TestClient]:
    server.flushall()
    queue = aioredis.Redis.from_url(server.url)

    async def push(raw: str) -> None:
        await queue.lpush("updates", raw)

    async def healthy() -> bool:
        return bool(await queue.ping())

    app = create_app(Settings(telegram_webhook_secret=SECRET, queue="updates"), push, health=healthy)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client
    await queue.aclose()


@pytest.mark.parametrize(("headers", "status"), [
    ({SECRET_HEADER: "wrong"}, 403),
    ({}, 403),
    ({SECRET_HEADER: SECRET[:-1]}, 403),
    ({SECRET_HEADER: SECRET + "x"}, 403),
    ({SECRET_HEADER: "пароль"}, 403),
    ({SECRET_HEADER: SECRET}, 200),
])
async def test_only_the_right_secret_enqueues(client: TestClient, store: redis.Redis, headers: dict[str, str],
                                              status: int) -> None:
    response = await client.post("/telegram/webhook", data=BODY, headers=headers)
    assert response.status == status
    assert store.llen("updates") == (1 if status == 200 else 0)


async def test_the_raw_update_is_enqueued_byte_for_byte(client: TestClient, store: redis.Redis) -> None:
    for path in ("/telegram/webhook", "/"):
        assert (await client.post(path, data=BODY, headers={SECRET_HEADER: SECRET})).status == 200
    assert store.lrange("updates", 0, -1) == [BODY, BODY]


async def test_oversized_and_empty_bodies_are_refused(client: TestClient, store: redis.Redis) -> None:
    big = b'{"update_id": 1, "pad": "' + b"x" * MAX_BODY + b'"}'
    assert (await client.post("/", data=big, headers={SECRET_HEADER: SECRET})).status == 413
    assert (await client.post("/", data=b"  ", headers={SECRET_HEADER: SECRET})).status == 400
    assert store.llen("updates") == 0


async def test_health(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200 and await response.json() == {"ok": True, "queue": "updates"}


async def test_a_queue_that_is_down_gets_503_so_telegram_retries() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=None)

    async def push(raw: str) -> None:
        await dead.lpush("updates", raw)

    async def healthy() -> bool:
        return bool(await dead.ping())

    app = create_app(Settings(telegram_webhook_secret=SECRET), push, health=healthy)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        assert (await test_client.post("/", data=BODY, headers={SECRET_HEADER: SECRET})).status == 503
        assert (await test_client.get("/healthz")).status == 503


def test_no_app_without_a_usable_secret() -> None:
    async def push(raw: str) -> None:
        raise AssertionError("never called")

    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        create_app(Settings(), push)
    with pytest.raises(ConfigError, match="A-Z"):
        create_app(Settings(telegram_webhook_secret="has spaces"), push)


async def test_the_secret_is_never_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post("/", data=BODY, headers={SECRET_HEADER: SECRET})
    await client.post("/", data=BODY, headers={SECRET_HEADER: "guess"})
    assert caplog.records and all(SECRET not in r.getMessage() for r in caplog.records)


async def test_median_response_time_over_200_requests(server: RedisServer) -> None:
    """Measured over real HTTP on loopback with a real Redis LPUSH behind each request."""
    server.flushall()
    queue = aioredis.Redis.from_url(server.url)

    async def push(raw: str) -> None:
        await queue.lpush("updates", raw)

    app = create_app(Settings(telegram_webhook_secret=SECRET, queue="updates"), push)
    async with TestServer(app, host="127.0.0.1") as test_server, ClientSession() as session:
        url = str(test_server.make_url("/telegram/webhook"))
        timings = []
        for i in range(200):
            body = json.dumps({**UPDATE, "update_id": i}).encode()
            started = time.perf_counter()
            async with session.post(url, data=body, headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 200
            timings.append(time.perf_counter() - started)
    assert await queue.llen("updates") == 200
    await queue.aclose()
    median, p95 = statistics.median(timings) * 1000, sorted(timings)[189] * 1000
    print(f"\nwebhook: median {median:.2f} ms, p95 {p95:.2f} ms over 200 requests (10 KB updates)")
    assert median < 50  # "answers in milliseconds"


# ----------------------------------------------------------------- the commands


def test_serve_refuses_to_start_without_a_secret(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    assert serve("127.0.0.1", free_port()) == 2
    err = capsys.readouterr().err
    assert err == "chatpay webhook: cannot start: TELEGRAM_WEBHOOK_SECRET is not set; see `chatpay webhook --help`\n"


def test_serve_refuses_a_port_outside_1_to_65535(capsys: pytest.CaptureFixture[str]) -> None:
    for port in (0, 65536, 99999):
        assert serve("127.0.0.1", port) == 2
        assert capsys.readouterr().err == f"chatpay webhook: --port must be 1-65535, got {port}\n"


def _env(env: dict[str, str]) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH"}}
    full["PYTHONPATH"] = str(ROOT)
    full.update(env)
    return full


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "chatpay.cli", "webhook", "--port", str(port)],
                            env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _webhook(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``chatpay webhook ARGS`` run to its end (it must refuse to start)."""
    return subprocess.run([sys.executable, "-m", "chatpay.cli", "webhook", *args], env=_env(env),
                          capture_output=True, text=True, timeout=60)


def _post(url: str, body: bytes, secret: str) -> int:
    req = urllib.request.Request(url, data=body, headers={SECRET_HEADER: secret}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise AssertionError("chatpay webhook did not come up")


def test_chatpay_webhook_process_enqueues_onto_real_redis_and_stops_on_sigterm(server: RedisServer,
                                                                               store: redis.Redis) -> None:
    port = free_port()
    proc = _start({"REDIS_URL": server.url, "TELEGRAM_WEBHOOK_SECRET": SECRET, "CHATPAY_QUEUE": "q1",
                   "TELEGRAM_BOT_TOKEN": TOKEN}, port)
    try:
        _wait_up(port, proc)
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        assert _post(url, BODY, "nope") == 403
        assert _post(url, BODY, SECRET) == 200
        assert store.lrange("q1", 0, -1) == [BODY]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert SECRET not in err.decode() and TOKEN not in err.decode()


def test_it_says_listening_only_once_it_is(server: RedisServer) -> None:
    port = free_port()
    proc = _start({"REDIS_URL": server.url, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_BOT_TOKEN": TOKEN}, port)
    try:
        assert proc.stderr is not None
        seen = []
        for raw in proc.stderr:
            seen.append(raw.decode())
            if "listening" in seen[-1]:
                break
        assert seen and f"webhook listening on http://127.0.0.1:{port}" in seen[-1], "".join(seen)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:  # no retry needed
            assert resp.status == 200
    finally:
        os.kill(proc.pid, signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_without_redis_or_the_bot_token_it_refuses_to_start_naming_every_missing_variable() -> None:
    """Without REDIS_URL the updates would go to a queue inside the webhook that no worker sees."""
    nothing = _webhook({})
    assert nothing.returncode == 2 and nothing.stdout == ""
    assert nothing.stderr == ("chatpay webhook: cannot start: TELEGRAM_WEBHOOK_SECRET, REDIS_URL (or REDIS_HOST) and "
                              "TELEGRAM_BOT_TOKEN are not set; see `chatpay webhook --help`\n")
    secret_only = _webhook({"TELEGRAM_WEBHOOK_SECRET": SECRET})
    assert secret_only.returncode == 2
    [line] = secret_only.stderr.splitlines()
    assert "REDIS_URL (or REDIS_HOST) and TELEGRAM_BOT_TOKEN are not set" in line
    assert "TELEGRAM_WEBHOOK_SECRET" not in line and SECRET not in line
    malformed = _webhook({"TELEGRAM_WEBHOOK_SECRET": "has spaces", "TELEGRAM_BOT_TOKEN": TOKEN})
    assert malformed.returncode == 2
    [line] = malformed.stderr.splitlines()
    assert "REDIS_URL (or REDIS_HOST) is not set" in line and "TELEGRAM_WEBHOOK_SECRET: must be 1-256" in line
    assert TOKEN not in line


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_a_port_outside_1_to_65535_is_one_line_and_exit_2(port: str) -> None:
    run = _webhook({"REDIS_URL": "redis://127.0.0.1:1/0", "TELEGRAM_WEBHOOK_SECRET": SECRET,
                    "TELEGRAM_BOT_TOKEN": TOKEN}, "--port", port)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "listening" not in run.stderr
    shown = "'http'" if port == "http" else str(int(port))
    assert run.stderr.splitlines()[-1] == f"chatpay webhook: error: argument --port: {shown} is not a port number (1-65535)"


def test_a_taken_port_is_one_line_not_a_traceback(server: RedisServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = _webhook({"REDIS_URL": server.url, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_BOT_TOKEN": TOKEN},
                       "--port", str(port))
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and "listening" not in run.stderr
    assert run.stderr.splitlines() == [f"chatpay webhook: cannot listen on 127.0.0.1:{port}: address already in use"]


def test_an_unreachable_redis_is_one_line_not_a_traceback() -> None:
    port = free_port()  # nothing listens there
    run = _webhook({"REDIS_URL": f"redis://:pw-{SECRET}@127.0.0.1:{port}/0", "TELEGRAM_WEBHOOK_SECRET": SECRET,
                    "TELEGRAM_BOT_TOKEN": TOKEN}, "--port", str(free_port()))
    assert run.returncode == 1
    [line] = run.stderr.splitlines()
    assert line.startswith(f"chatpay webhook: cannot reach Redis at redis://:***@127.0.0.1:{port}/0 (REDIS_URL): ")
    assert SECRET not in run.stderr and "listening" not in run.stderr


def test_a_malformed_redis_url_is_one_line_and_exit_2() -> None:
    run = _webhook({"REDIS_URL": "http://127.0.0.1:1/", "TELEGRAM_WEBHOOK_SECRET": SECRET,
                    "TELEGRAM_BOT_TOKEN": TOKEN})
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    assert line.startswith("chatpay webhook: REDIS_URL: ")


def test_set_webhook_registers_url_secret_and_update_kinds(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    with BotApiDouble() as double:
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", double.base_url)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
        assert set_webhook("https://shop.example/telegram/webhook") == 0
        (call,) = double.delivered()
        assert call.method == "setWebhook" and call.token == TOKEN
        assert call.params == {"url": "https://shop.example/telegram/webhook", "secret_token": SECRET,
                               "allowed_updates": list(ALLOWED_UPDATES)}
        double.fail_next(1, status=400, description="Bad Request: bad webhook: HTTPS url must be provided")
        assert set_webhook("http://insecure.example/") == 1
    out = capsys.readouterr()
    assert "webhook set" in out.out and "https url must be provided" in out.err.lower()
    assert TOKEN not in out.out + out.err and SECRET not in out.out + out.err


def test_set_webhook_needs_token_and_secret(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    assert set_webhook("https://shop.example/") == 2
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    assert set_webhook("https://shop.example/") == 2
    assert "TELEGRAM_WEBHOOK_SECRET" in capsys.readouterr().err
