"""`chatpay dlq list|show|requeue|purge` against a real redis-server, as an operator runs it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatpay.adapters.redis import RedisQueue, connect, queue_name
from chatpay.cli import main
from chatpay.core.ports import Delivery
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture
def env(server: RedisServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    server.flushall()
    monkeypatch.chdir(tmp_path)
    for name in ("CHATPAY_BUSINESSES", "REDIS_CLUSTER", "CHATPAY_QUEUE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("BUSINESS_ID", "shop")
    return server.url


async def _dead_letter(url: str, business: str, *raws: str) -> None:
    client = connect(url)
    queue = RedisQueue(client, queue_name("chatpay_queue", business), worker_id="test")
    for i, raw in enumerate(raws):
        await queue.push(raw)
        await queue.route()
        delivery: Delivery | None = await queue.reserve(1.0)
        assert delivery is not None
        await queue.dead_letter(delivery, f"reason {i}")
    await client.aclose()


async def _inbound(url: str, business: str) -> list[str]:
    client = connect(url)
    try:
        return list(await client.lrange(queue_name("chatpay_queue", business), 0, -1))
    finally:
        await client.aclose()


def test_an_operator_lists_shows_requeues_and_purges_dead_letters(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    raws = [json.dumps({"update_id": n, "message": {"text": f"poison {n}"}}) for n in (11, 12, 13)]
    asyncio.run(_dead_letter(env, "shop", *raws))
    asyncio.run(_dead_letter(env, "other", json.dumps({"update_id": 99})))  # another business: never touched

    assert main(["dlq", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(row["position"], row["update_id"], row["reason"]) for row in listed] == [
        (0, 13, "reason 2"), (1, 12, "reason 1"), (2, 11, "reason 0")]  # newest first
    assert all(row["age_seconds"] is not None and row["age_seconds"] >= 0 for row in listed)

    assert main(["dlq", "show", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["raw"] == raws[1]
    assert main(["dlq", "show", "7"]) == 2
    assert "no dead letter at position 7 of shop" in capsys.readouterr().err

    assert main(["dlq", "requeue", "0", "2"]) == 0
    assert "2 dead letters of shop requeued onto the queue" in capsys.readouterr().out
    assert sorted(json.loads(r)["update_id"] for r in asyncio.run(_inbound(env, "shop"))) == [11, 13]
    assert main(["dlq", "requeue"]) == 2  # nothing named: nothing done
    assert "say which dead letters to requeue" in capsys.readouterr().err

    assert main(["dlq", "purge", "--all"]) == 0
    assert "1 dead letter of shop purged" in capsys.readouterr().out
    assert main(["dlq", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["dlq", "list", "--business", "other", "--json"]) == 2  # not a business of this deployment
    assert "no business 'other'" in capsys.readouterr().err


def test_without_redis_the_command_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("REDIS_URL", "REDIS_HOST", "CHATPAY_BUSINESSES"):
        monkeypatch.delenv(name, raising=False)
    assert main(["dlq", "list"]) == 2
    assert "REDIS_URL: is not set" in capsys.readouterr().err
