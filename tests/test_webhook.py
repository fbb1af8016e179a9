"""The webhook on a real redis-server over real HTTP: per-business secrets and queues, updates
cleaned at the edge, slow and surplus connections shed, readiness, and the two commands."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
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
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis
from aiohttp import ClientSession, TCPConnector
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chatpay.adapters.redis import queue_name
from chatpay.businesses import Businesses, load_businesses
from chatpay.config import Settings
from chatpay.core.errors import ConfigError
from chatpay.webhook import (
    ALLOWED_UPDATES,
    MAX_BODY,
    MAX_TEXT,
    SECRET_HEADER,
    Limits,
    Listener,
    create_app,
    listening,
    run,
    serve,
    set_webhook,
)
from tests.support.botapi import BotApiDouble
from tests.support.redis_server import RedisServer, free_port

SECRET = "s3cret-Token_value"
TOKEN = "123456:BOT-token-value"
ROOT = Path(__file__).resolve().parents[1]
TEXT = "Meias 🧦 <b>&amp;</b> " + "ж" * 4000  # within Telegram's 4,096 characters: queued as it came
UPDATE: dict[str, Any] = {"update_id": 1, "message": {"message_id": 1, "date": 1, "chat": {"id": 42, "type": "private"},
                                      "from": {"id": 42, "is_bot": False, "first_name": "Ana"}, "text": TEXT}}
BODY = json.dumps(UPDATE, ensure_ascii=False).encode()
NO_RETRY = Retry(NoBackoff(), 0)
Q = queue_name("updates", "demo")  # the one business's queue

# Two businesses of one deployment (CHATPAY_BUSINESSES), each with its own bot and secret.
MANY = """
[[business]]
id = "acme"
name = "Acme Audio"
bot_token_env = "ACME_BOT_TOKEN"
webhook_secret_env = "ACME_WEBHOOK_SECRET"

[[business]]
id = "bolt"
name = "Bolt Tools"
bot_token_env = "BOLT_BOT_TOKEN"
webhook_secret_env = "BOLT_WEBHOOK_SECRET"
"""
ACME_SECRET, BOLT_SECRET = "acme-secret_1", "bolt-secret_2"
ACME_TOKEN, BOLT_TOKEN = "111:ACME-token-value", "222:BOLT-token-value"
MANY_ENV = {"ACME_BOT_TOKEN": ACME_TOKEN, "ACME_WEBHOOK_SECRET": ACME_SECRET,
            "BOLT_BOT_TOKEN": BOLT_TOKEN, "BOLT_WEBHOOK_SECRET": BOLT_SECRET}


def update(update_id: int, text: str = "hello") -> bytes:
    return json.dumps({**UPDATE, "update_id": update_id, "message": {**UPDATE["message"], "text": text}}).encode()


def one_business(**changes: Any) -> tuple[Settings, Businesses]:
    settings = Settings(telegram_webhook_secret=SECRET, telegram_bot_token=TOKEN, queue="updates", **changes)
    return settings, load_businesses(settings)


@pytest.fixture
def many_file(tmp_path: Path) -> Path:
    path = tmp_path / "businesses.toml"
    path.write_text(MANY, encoding="utf-8")
    return path


def many_businesses(path: Path, **changes: Any) -> tuple[Settings, Businesses]:
    settings = Settings(queue="updates", businesses_file=path, **changes)
    return settings, load_businesses(settings, MANY_ENV)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture
def store(server: RedisServer) -> redis.Redis:
    server.flushall()
    return redis.Redis.from_url(server.url)


@pytest.fixture
async def queue(server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    server.flushall()
    client = aioredis.Redis.from_url(server.url)
    yield client
    await client.aclose()


def pusher(client: aioredis.Redis) -> Any:
    async def push(name: str, raw: str) -> None:
        await client.lpush(name, raw)

    return push


@pytest.fixture
async def client(queue: aioredis.Redis) -> AsyncIterator[TestClient]:
    async def ready() -> bool:
        return bool(await queue.ping())

    settings, businesses = one_business()
    app = create_app(settings, businesses, pusher(queue), ready=ready)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


@pytest.fixture
async def many(queue: aioredis.Redis, many_file: Path) -> AsyncIterator[TestClient]:
    settings, businesses = many_businesses(many_file)
    app = create_app(settings, businesses, pusher(queue))
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


# ----------------------------------------------------------------- secrets and routes


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
    assert store.llen(Q) == (1 if status == 200 else 0)


async def test_a_valid_update_is_enqueued_byte_for_byte_on_every_single_business_path(
        client: TestClient, store: redis.Redis) -> None:
    for path in ("/telegram/webhook", "/", "/telegram/demo"):
        assert (await client.post(path, data=BODY, headers={SECRET_HEADER: SECRET})).status == 200
    assert store.lrange(Q, 0, -1) == [BODY, BODY, BODY]
    assert store.keys("*") == [Q.encode()]


async def test_each_business_has_its_own_path_secret_and_queue(many: TestClient, store: redis.Redis) -> None:
    assert (await many.post("/telegram/acme", data=update(1), headers={SECRET_HEADER: ACME_SECRET})).status == 200
    assert (await many.post("/telegram/bolt", data=update(2), headers={SECRET_HEADER: BOLT_SECRET})).status == 200
    assert [json.loads(raw)["update_id"] for raw in store.lrange(queue_name("updates", "acme"), 0, -1)] == [1]
    assert [json.loads(raw)["update_id"] for raw in store.lrange(queue_name("updates", "bolt"), 0, -1)] == [2]


async def test_one_business_secret_on_another_business_path_is_403_and_queues_nothing(
        many: TestClient, store: redis.Redis) -> None:
    for path, secret in (("/telegram/bolt", ACME_SECRET), ("/telegram/acme", BOLT_SECRET),
                         ("/telegram/acme", ""), ("/telegram/acme", SECRET)):
        response = await many.post(path, data=update(3), headers={SECRET_HEADER: secret} if secret else {})
        assert response.status == 403, (path, secret)
    assert store.keys("*") == []


async def test_an_unknown_business_is_404_naming_no_business(many: TestClient, store: redis.Redis) -> None:
    for path in ("/telegram/nobody", "/telegram/webhook", "/telegram/ACME"):
        response = await many.post(path, data=update(4), headers={SECRET_HEADER: ACME_SECRET})
        body = await response.text()
        assert response.status == 404, path
        assert "acme" not in body.lower() and "bolt" not in body.lower()
    assert (await many.post("/", data=update(5), headers={SECRET_HEADER: ACME_SECRET})).status in (404, 405)
    assert store.keys("*") == []


def test_no_app_without_a_usable_secret(many_file: Path) -> None:
    async def push(name: str, raw: str) -> None:
        raise AssertionError("never called")

    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        create_app(Settings(), load_businesses(Settings()), push)
    bad = Settings(telegram_webhook_secret="has spaces")
    with pytest.raises(ConfigError, match="A-Z"):
        create_app(bad, load_businesses(bad), push)
    shared = Settings(businesses_file=many_file)
    with pytest.raises(ConfigError, match="ACME_WEBHOOK_SECRET and BOLT_WEBHOOK_SECRET hold the same secret"):
        create_app(shared, load_businesses(shared, {**MANY_ENV, "BOLT_WEBHOOK_SECRET": ACME_SECRET}), push)


# ----------------------------------------------------------------- what is queued


async def test_invalid_unicode_is_replaced_and_long_texts_are_cut_to_4096(client: TestClient,
                                                                          store: redis.Redis) -> None:
    long = "x" * 10_000
    body = ('{"update_id": 7, "message": {"message_id": 7, "date": 1, "chat": {"id": 42, "type": "private"}, '
            '"from": {"id": 42, "is_bot": false, "first_name": "Ana\\udc00"}, '
            '"text": "hi \\ud800 there ' + long + '"}}').encode()
    assert (await client.post("/", data=body, headers={SECRET_HEADER: SECRET})).status == 200
    edited = json.dumps({"update_id": 8, "edited_message": {"message_id": 7, "date": 1, "chat": {"id": 42},
                                                            "caption": "é" * 5000}}).encode()
    assert (await client.post("/", data=edited, headers={SECRET_HEADER: SECRET})).status == 200
    bad_bytes = b'{"update_id": 9, "message": {"text": "caf\xe9 \xff"}}'
    assert (await client.post("/", data=bad_bytes, headers={SECRET_HEADER: SECRET})).status == 200
    third, second, first = cast(list[bytes], store.lrange(Q, 0, -1))
    message = json.loads(first.decode("utf-8"))["message"]  # strict UTF-8: no surrogate got through
    assert message["text"] == ("hi \ufffd there " + long)[:MAX_TEXT] and len(message["text"]) == 4096
    assert message["from"]["first_name"] == "Ana\ufffd"
    assert json.loads(second.decode("utf-8"))["edited_message"]["caption"] == "é" * 4096
    assert json.loads(third.decode("utf-8"))["message"]["text"] == "caf\ufffd \ufffd"
    assert "\\u" not in first.decode("utf-8")  # re-serialised as UTF-8, not as ASCII escapes


async def test_bodies_that_are_not_updates_are_refused(client: TestClient, store: redis.Redis) -> None:
    big = b'{"update_id": 1, "pad": "' + b"x" * MAX_BODY + b'"}'
    headers = {SECRET_HEADER: SECRET}
    assert (await client.post("/", data=big, headers=headers)).status == 413
    assert (await client.post("/", data=b"  ", headers=headers)).status == 400
    for junk in (b"hello", b'{"update_id": 1', b"[" * 100_000, b'{"update_id": NaN}'):
        response = await client.post("/", data=junk, headers=headers)
        assert (response.status, await response.text()) == (400, "not JSON"), junk[:20]
    for not_object in (b"[1, 2]", b'"text"', b"42"):
        assert (await client.post("/", data=not_object, headers=headers)).status == 400
    # ChatPay's own confirmed-payment marker, plain or hidden behind a JSON escape
    for forged in (b'{"update_id": 1, "chatpay_payment": {}}', b'{"update_id": 1, "chatpay\\u005fpayment": {}}'):
        response = await client.post("/", data=forged, headers=headers)
        assert (response.status, await response.text()) == (400, "not a Telegram update")
    assert store.llen(Q) == 0


async def test_no_log_line_carries_the_secret_or_message_text(queue: aioredis.Redis,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "confidential-shopper-words-9f3"
    dead = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=NO_RETRY)
    for push in (pusher(queue), pusher(dead)):  # queued, and the queue down (503)
        settings, businesses = one_business()
        app = create_app(settings, businesses, push)
        async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
            for secret in (SECRET, "guess"):
                await test_client.post("/", data=update(11, marker), headers={SECRET_HEADER: secret})
            await test_client.post("/", data=b'{"text": "' + marker.encode() + b'"', headers={SECRET_HEADER: SECRET})
    await dead.aclose()
    records = caplog.records
    assert any(r.getMessage() == "could not enqueue an update" and r.__dict__.get("update_id") == 11
               for r in records)
    for record in records:
        everything = record.getMessage() + " ".join(str(v) for v in record.__dict__.values())
        assert marker not in everything and SECRET not in everything, record.getMessage()


# ----------------------------------------------------------------- health and readiness


async def test_healthz_is_liveness_and_readyz_is_redis(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200 and await response.json() == {"ok": True}
    response = await client.get("/readyz")
    assert response.status == 200 and await response.json() == {"ok": True}


async def test_a_queue_that_is_down_gets_503_so_telegram_retries() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=NO_RETRY)

    async def ready() -> bool:
        return bool(await dead.ping())

    settings, businesses = one_business()
    app = create_app(settings, businesses, pusher(dead), ready=ready)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        assert (await test_client.post("/", data=BODY, headers={SECRET_HEADER: SECRET})).status == 503
        assert (await test_client.get("/readyz")).status == 503
        assert (await test_client.get("/healthz")).status == 200  # alive: restarting it would not help
    await dead.aclose()


async def test_readyz_answers_503_within_a_second_when_redis_hangs() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(30)
        return True

    settings, businesses = one_business()
    app = create_app(settings, businesses, pusher(None), ready=hangs)  # type: ignore[arg-type]
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        started = time.monotonic()
        assert (await test_client.get("/readyz")).status == 503
        assert time.monotonic() - started < 2


async def test_readiness_flips_to_503_when_redis_stops_and_liveness_stays() -> None:
    """The real serving path (``run``) on its own redis-server, which the test then stops."""
    own = RedisServer().start()
    try:
        settings, businesses = one_business(redis_url=own.url)
        stop = asyncio.Event()
        bound: asyncio.Future[Listener] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(run(settings, businesses, "127.0.0.1", 0, stop=stop,
                                       listening_on=bound.set_result))
        listener = await asyncio.wait_for(bound, 10)
        base = f"http://127.0.0.1:{listener.port}"
        async with ClientSession() as http:
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
            async with http.post(f"{base}/telegram/demo", data=update(21), headers={SECRET_HEADER: SECRET}) as r:
                assert r.status == 200
            assert redis.Redis.from_url(own.url).llen(Q) == 1
            own.stop()
            started = time.monotonic()
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503 and await response.json() == {"ok": False}
            assert time.monotonic() - started < 2
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with http.post(f"{base}/telegram/demo", data=update(22), headers={SECRET_HEADER: SECRET}) as r:
                assert r.status == 503
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        own.stop()


# ----------------------------------------------------------------- slow and surplus connections


@pytest.fixture
async def guarded(queue: aioredis.Redis) -> AsyncIterator[Listener]:
    """The app behind the real listening socket, with short timeouts and a cap of 3 connections."""
    settings, businesses = one_business()
    limits = Limits(max_connections=3, header_timeout=0.5, body_timeout=0.5)
    async with listening(create_app(settings, businesses, pusher(queue), limits=limits), limits=limits) as listener:
        yield listener


async def wait_for_open(listener: Listener, count: int) -> None:
    deadline = time.monotonic() + 5
    while listener.open != count:
        assert time.monotonic() < deadline, f"{listener.open} connections open, expected {count}"
        await asyncio.sleep(0.01)


async def test_a_client_that_never_finishes_its_headers_is_disconnected_while_others_are_served(
        guarded: Listener, store: redis.Redis) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port)
    writer.write(b"POST /telegram/demo HTTP/1.1\r\nHost: shop.example\r\nContent-Type: applica")
    await writer.drain()
    started = time.monotonic()
    # A legitimate request while the slow one hangs on. Its connection closes after the answer: kept
    # alive, it would idle into the same header timeout and be counted too.
    async with ClientSession(connector=TCPConnector(force_close=True)) as http:
        async with http.post(f"http://127.0.0.1:{guarded.port}/telegram/demo", data=update(31),
                             headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 200
        assert time.monotonic() - started < 0.5
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, no answer
        waited = time.monotonic() - started
    writer.close()
    assert 0.4 <= waited < 2.5, waited
    assert guarded.timed_out == 1 and store.llen(Q) == 1


async def test_an_idle_connection_is_closed_after_the_header_timeout(guarded: Listener) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port)
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert 0.4 <= time.monotonic() - started < 2.5
    writer.close()


async def test_a_body_slower_than_the_body_timeout_gets_408_and_is_closed(guarded: Listener,
                                                                          store: redis.Redis) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port)
    writer.write(b"POST /telegram/demo HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 100\r\n"
                 + f"{SECRET_HEADER}: {SECRET}\r\n\r\n".encode() + b'{"update_id": 1')
    await writer.drain()
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), 5)  # the answer, then the end of the stream
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:40]
    assert 0.4 <= time.monotonic() - started < 3
    writer.close()
    assert store.llen(Q) == 0


async def test_connections_over_the_cap_are_refused_at_once_and_served_again_below_it(
        guarded: Listener, store: redis.Redis) -> None:
    held = [await asyncio.open_connection("127.0.0.1", guarded.port) for _ in range(3)]
    await wait_for_open(guarded, 3)
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port)
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), 2)
    assert answer.startswith(b"HTTP/1.1 503 ") and time.monotonic() - started < 0.3
    writer.close()
    assert guarded.refused == 1 and guarded.open == 3
    held[0][1].close()
    await wait_for_open(guarded, 2)
    async with ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{guarded.port}/telegram/demo", data=update(41),
                             headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 200
    for _, held_writer in held[1:]:
        held_writer.close()
    assert store.llen(Q) == 1


def test_the_connection_cap_fits_under_a_low_file_limit(server: RedisServer) -> None:
    """With 256 descriptors the cap comes down to what fits (96, beside the Redis pool, the reserve and
    an accept batch), and 300 clients at once all get an answer promptly (200, or 503 over the cap)
    instead of the accept loop running out of descriptors."""
    port = free_port()

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    proc = subprocess.Popen([sys.executable, "-m", "chatpay.cli", "webhook", "--port", str(port)],
                            env=_env({"REDIS_URL": server.url, "TELEGRAM_WEBHOOK_SECRET": SECRET,
                                      "TELEGRAM_BOT_TOKEN": TOKEN}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=low_limit)
    try:
        assert proc.stderr is not None
        head = []
        for raw in proc.stderr:
            head.append(raw.decode())
            if "listening" in head[-1]:
                break
        assert "the file-descriptor limit (256) holds only 96 connections" in "".join(head), "".join(head)
        assert "at most 96 connections" in head[-1]

        async def burst() -> list[int | str]:
            async def one(i: int) -> int | str:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    body = update(100 + i)
                    writer.write(b"POST /telegram/demo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                 + f"Content-Length: {len(body)}\r\n{SECRET_HEADER}: {SECRET}\r\n\r\n".encode() + body)
                    answer = await asyncio.wait_for(reader.read(), 30)  # a hang fails the test (CI is slow)
                    writer.close()
                except (ConnectionResetError, BrokenPipeError):  # refused over the cap while still sending
                    return "refused"
                return int(answer.split()[1]) if answer else "refused"  # the 503 lost to the reset
            return await asyncio.gather(*(one(i) for i in range(300)))

        started = time.monotonic()
        answers = asyncio.run(burst())
        assert time.monotonic() - started < 8
        assert set(answers) <= {200, 503, "refused"} and answers.count(200) >= 96, answers  # the cap's worth
        assert redis.Redis.from_url(server.url).llen(queue_name("chatpay_queue", "demo")) == answers.count(200)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert "out of system resource" not in err.decode() and "Too many open files" not in err.decode()


async def test_median_response_time_over_200_requests(queue: aioredis.Redis) -> None:
    """Measured over real HTTP on loopback with a real Redis LPUSH behind each request."""
    settings, businesses = one_business()
    app = create_app(settings, businesses, pusher(queue))
    async with listening(app) as listener, ClientSession() as session:
        url = f"http://127.0.0.1:{listener.port}/telegram/webhook"
        timings = []
        for i in range(200):
            body = json.dumps({**UPDATE, "update_id": i}).encode()
            started = time.perf_counter()
            async with session.post(url, data=body, headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 200
            timings.append(time.perf_counter() - started)
    assert await queue.llen(Q) == 200
    median, p95 = statistics.median(timings) * 1000, sorted(timings)[189] * 1000
    print(f"\nwebhook: median {median:.2f} ms, p95 {p95:.2f} ms over 200 requests (8 KB updates)")
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


def test_serve_refuses_limits_that_are_not_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve("127.0.0.1", free_port(), max_connections=0, header_timeout=0, body_timeout=-1) == 2
    assert capsys.readouterr().err == (
        "chatpay webhook: --max-connections must be at least 1, got 0; --header-timeout must be a positive "
        "number of seconds, got 0; --body-timeout must be a positive number of seconds, got -1\n")


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
        assert store.lrange(queue_name("q1", "demo"), 0, -1) == [BODY]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert SECRET not in err.decode() and TOKEN not in err.decode()


def test_chatpay_webhook_process_serves_every_business_of_the_file(server: RedisServer, store: redis.Redis,
                                                                   many_file: Path) -> None:
    port = free_port()
    proc = _start({"REDIS_URL": server.url, "CHATPAY_BUSINESSES": str(many_file), **MANY_ENV}, port)
    try:
        _wait_up(port, proc)
        base = f"http://127.0.0.1:{port}/telegram"
        assert _post(f"{base}/acme", update(51), ACME_SECRET) == 200
        assert _post(f"{base}/bolt", update(52), BOLT_SECRET) == 200
        assert _post(f"{base}/bolt", update(53), ACME_SECRET) == 403
        assert _post(f"{base}/nobody", update(54), ACME_SECRET) == 404
        assert _post(f"{base}/webhook", update(55), ACME_SECRET) == 404  # no single-business route here
        assert [json.loads(r)["update_id"] for r in store.lrange(queue_name("chatpay_queue", "acme"), 0, -1)] == [51]
        assert [json.loads(r)["update_id"] for r in store.lrange(queue_name("chatpay_queue", "bolt"), 0, -1)] == [52]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert all(s not in err.decode() for s in MANY_ENV.values())


def test_with_many_businesses_it_needs_redis_and_a_usable_file(many_file: Path, tmp_path: Path) -> None:
    no_redis = _webhook({"CHATPAY_BUSINESSES": str(many_file), **MANY_ENV})
    assert no_redis.returncode == 2
    assert no_redis.stderr == ("chatpay webhook: cannot start: REDIS_URL (or REDIS_HOST) is not set; "
                               "see `chatpay webhook --help`\n")
    unset = _webhook({"CHATPAY_BUSINESSES": str(many_file), "REDIS_URL": "redis://127.0.0.1:1/0",
                      **{k: v for k, v in MANY_ENV.items() if k != "BOLT_WEBHOOK_SECRET"}})
    assert unset.returncode == 2
    [line] = unset.stderr.splitlines()
    assert line.startswith("chatpay webhook: CHATPAY_BUSINESSES: ") and "BOLT_WEBHOOK_SECRET, which is not set" in line
    shared = _webhook({"CHATPAY_BUSINESSES": str(many_file), "REDIS_URL": "redis://127.0.0.1:1/0",
                       **MANY_ENV, "BOLT_WEBHOOK_SECRET": ACME_SECRET})
    assert shared.returncode == 2
    [line] = shared.stderr.splitlines()
    assert "ACME_WEBHOOK_SECRET and BOLT_WEBHOOK_SECRET hold the same secret" in line and ACME_SECRET not in line
    malformed = _webhook({"CHATPAY_BUSINESSES": str(many_file), "REDIS_URL": "redis://127.0.0.1:1/0",
                          **MANY_ENV, "BOLT_WEBHOOK_SECRET": "has spaces"})
    assert malformed.returncode == 2 and "BOLT_WEBHOOK_SECRET: must be 1-256" in malformed.stderr


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
        assert set_webhook("https://shop.example/", business="demo") == 0
        assert double.delivered()[-1].params["url"] == "https://shop.example/telegram/demo"
        assert set_webhook("https://shop.example/", business="acme") == 2
    out = capsys.readouterr()
    assert "webhook set" in out.out and "https url must be provided" in out.err.lower()
    assert "BUSINESS_ID: no business 'acme'; this deployment serves demo" in out.err
    assert TOKEN not in out.out + out.err and SECRET not in out.out + out.err


def test_set_webhook_with_many_businesses_uses_the_chosen_one(monkeypatch: pytest.MonkeyPatch, many_file: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with BotApiDouble() as double:
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", double.base_url)
        monkeypatch.setenv("CHATPAY_BUSINESSES", str(many_file))
        for name, value in MANY_ENV.items():
            monkeypatch.setenv(name, value)
        assert set_webhook("https://hub.example/") == 2
        assert "this deployment serves 2 businesses (acme, bolt); choose one with --business" in capsys.readouterr().err
        assert set_webhook("https://hub.example/", business="bolt") == 0
        assert set_webhook("https://hub.example/custom/acme-path", business="acme") == 0
        assert set_webhook("https://hub.example/", business="nobody") == 2
        bolt, acme = double.delivered()
    assert (bolt.token, bolt.params["url"], bolt.params["secret_token"]) == (
        BOLT_TOKEN, "https://hub.example/telegram/bolt", BOLT_SECRET)
    assert (acme.token, acme.params["url"], acme.params["secret_token"]) == (
        ACME_TOKEN, "https://hub.example/custom/acme-path", ACME_SECRET)
    out = capsys.readouterr()
    assert "webhook set: https://hub.example/telegram/bolt (business bolt;" in out.out
    assert "no business 'nobody'; this deployment serves acme, bolt" in out.err
    assert all(s not in out.out + out.err for s in MANY_ENV.values())


def test_set_webhook_needs_token_and_secret(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    assert set_webhook("https://shop.example/") == 2
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    assert set_webhook("https://shop.example/") == 2
    assert "TELEGRAM_WEBHOOK_SECRET" in capsys.readouterr().err


async def test_metrics_count_each_businesss_requests_by_answer(queue: aioredis.Redis, many_file: Path) -> None:
    from chatpay.metrics import Metrics

    settings, businesses = many_businesses(many_file)
    metrics = Metrics()
    app = create_app(settings, businesses, pusher(queue), metrics=metrics)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        update = json.dumps({"update_id": 5, "message": {"message_id": 1, "date": 1, "chat": {"id": 1}, "text": "hi"}})
        for _ in range(3):
            await test_client.post("/telegram/acme", data=update, headers={SECRET_HEADER: ACME_SECRET})
        await test_client.post("/telegram/bolt", data=update, headers={SECRET_HEADER: ACME_SECRET})  # wrong secret
        scraped = await (await test_client.get("/metrics")).text()
    assert 'chatpay_webhook_requests_total{business="acme",status="200"} 3.0' in scraped
    assert 'chatpay_webhook_requests_total{business="bolt",status="403"} 1.0' in scraped


STRIPE_SECRET = "whsec_fleet_routing_1"


def stripe_provider() -> Any:
    from chatpay.adapters.payments.stripe_checkout import from_env

    return from_env({"STRIPE_API_KEY": "sk_test_routing", "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET})


def taking_stripe(tmp_path: Path, *ids: str) -> Path:
    """The two-business file with ``payments = "stripe"`` for ``ids``."""
    text = MANY
    for business in ids:
        line = f'webhook_secret_env = "{business.upper()}_WEBHOOK_SECRET"'
        text = text.replace(line, f'{line}\npayments = "stripe"')
    path = tmp_path / "businesses.toml"
    path.write_text(text, encoding="utf-8")
    return path


def paid_session(business: str | None, order: str, thread: str = "501") -> bytes:
    """A ``checkout.session.completed`` body for a paid session ChatPay opened for ``business``."""
    metadata = {"order_id": order, "thread_id": thread, "chat_id": thread}
    if business is not None:
        metadata["business_id"] = business
    session = {"id": f"cs_{order}", "object": "checkout.session", "payment_status": "paid", "status": "complete",
               "payment_intent": f"pi_{order}", "amount_total": 2495, "currency": "eur", "metadata": metadata,
               "client_reference_id": order}
    return json.dumps({"id": f"evt_{order}", "object": "event", "type": "checkout.session.completed",
                       "api_version": "2025-03-31.basil", "data": {"object": session}}).encode()


async def test_stripe_payments_go_to_the_queue_of_the_business_that_opened_the_session(
    queue: aioredis.Redis, tmp_path: Path
) -> None:
    """Several businesses on one platform Stripe account: each paid session reaches its own business's
    workers, and a session of a business not taking Stripe here is refused (Stripe retries it)."""
    from tests.payments.stripe_standin import sign

    settings, businesses = many_businesses(taking_stripe(tmp_path, "acme", "bolt"))
    app = create_app(settings, businesses, pusher(queue), stripe=stripe_provider())
    async with TestClient(TestServer(app, host="127.0.0.1")) as http:
        async def post(body: bytes) -> int:
            answer = await http.post("/stripe/webhook", data=body, headers={"Stripe-Signature": sign(body, STRIPE_SECRET)})
            return answer.status

        assert await post(paid_session("bolt", "ord-b1")) == 200
        assert await post(paid_session("acme", "ord-a1")) == 200
        assert await post(paid_session("zeta", "ord-z1")) == 404  # served nowhere here: Stripe keeps it
        assert await post(paid_session(None, "ord-old")) == 404  # two businesses take Stripe: whose is it?
    bolt = [json.loads(raw) for raw in await queue.lrange(queue_name("updates", "bolt"), 0, -1)]
    acme = [json.loads(raw) for raw in await queue.lrange(queue_name("updates", "acme"), 0, -1)]
    assert "ord-b1" in json.dumps(bolt) and "ord-a1" not in json.dumps(bolt)
    assert "ord-a1" in json.dumps(acme) and "ord-b1" not in json.dumps(acme)
    assert "ord-z1" not in json.dumps(bolt + acme) and "ord-old" not in json.dumps(bolt + acme)


async def test_a_session_without_its_business_goes_to_the_one_business_taking_stripe(
    queue: aioredis.Redis, tmp_path: Path
) -> None:
    from tests.payments.stripe_standin import sign

    settings, businesses = many_businesses(taking_stripe(tmp_path, "bolt"))
    app = create_app(settings, businesses, pusher(queue), stripe=stripe_provider())
    async with TestClient(TestServer(app, host="127.0.0.1")) as http:
        body = paid_session(None, "ord-legacy")
        answer = await http.post("/stripe/webhook", data=body, headers={"Stripe-Signature": sign(body, STRIPE_SECRET)})
        assert answer.status == 200 and (await answer.json())["used"] is True
        body = paid_session("acme", "ord-acme")  # acme takes no cards here
        answer = await http.post("/stripe/webhook", data=body, headers={"Stripe-Signature": sign(body, STRIPE_SECRET)})
        assert answer.status == 404
    assert "ord-legacy" in str(await queue.lrange(queue_name("updates", "bolt"), 0, -1))
    assert await queue.llen(queue_name("updates", "acme")) == 0
