"""One worker process serving several businesses (CHATPAY_BUSINESSES): each through its own queue and bot.

The worker is ``chatpay.worker.serve`` itself, wired from a businesses file as in production:
it imports each business's catalog on first use, answers each shopper with that business's bot
and catalog, and keeps every cart under its own business.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from chatpay.adapters.redis import RedisStateStores, queue_name
from chatpay.config import load_settings
from chatpay.worker import WorkerOptions, serve
from tests.production.conftest import QUEUE_BASE
from tests.production.helpers import message, wait_until
from tests.support.botapi import BotApiDouble

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"forge": "1001:forge-secret-token", "glow": "2002:glow-secret-token"}
FIRST_PRODUCT = {shop: json.loads((ROOT / "fixtures" / shop / "catalog.json").read_text())["products"][0]["title"]
                 for shop in TOKENS}


def businesses_file(tmp_path: Path) -> Path:
    entries = []
    for shop in TOKENS:
        entries.append(f'[[business]]\nid = "{shop}"\nname = "{shop.title()}"\n'
                       f'catalog = "{ROOT / "fixtures" / shop / "catalog.json"}"\n'
                       f'store = "{ROOT / "fixtures" / shop / "store.json"}"\n'
                       f'bot_token_env = "{shop.upper()}_BOT_TOKEN"\nwebhook_secret_env = "{shop.upper()}_SECRET"\n')
    path = tmp_path / "businesses.toml"
    path.write_text("\n".join(entries))
    return path


def start_worker(redis_url: str, bot_api: BotApiDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 worker_id: str, stop: asyncio.Event) -> asyncio.Task[int]:
    """``chatpay.worker.serve`` for both businesses, configured through the environment as in production."""
    env = {"CHATPAY_BUSINESSES": str(businesses_file(tmp_path)), "REDIS_URL": redis_url,
           "TELEGRAM_API_BASE_URL": bot_api.base_url, "CHATPAY_DATA_DIR": str(tmp_path / "data"), "WORKER_ID": worker_id}
    for shop, token in TOKENS.items():
        env[f"{shop.upper()}_BOT_TOKEN"] = token
        env[f"{shop.upper()}_SECRET"] = f"{shop}-hook"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(env_file=tmp_path / "none.env")
    options = WorkerOptions(concurrency=4, heartbeat_ttl=5.0, state_store="redis")
    return asyncio.create_task(serve(settings, options, stop=stop))


@pytest.mark.timeout(180)
async def test_one_worker_answers_each_business_with_its_own_bot_catalog_and_carts(
    redis_url: str, bot_api: BotApiDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = asyncio.Event()
    worker = start_worker(redis_url, bot_api, tmp_path, monkeypatch, "multi", stop)
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        # The same user id and update id in both businesses: nothing may mix them up.
        for shop in TOKENS:
            await client.lpush(queue_name(QUEUE_BASE, shop), message(7, 42, f"add 2 {FIRST_PRODUCT[shop]}"))
        replies = await wait_until(lambda: len(bot_api.delivered("sendMessage")) >= 2 and
                                   bot_api.delivered("sendMessage"), 120, "a reply from each business")
        by_token = {call.token: call for call in replies}
        assert set(by_token) == set(TOKENS.values())  # each business answered through its own bot
        for shop, token in TOKENS.items():
            other = next(s for s in TOKENS if s != shop)
            text = str(by_token[token].params.get("text"))
            assert FIRST_PRODUCT[shop] in text and FIRST_PRODUCT[other] not in text
        state = RedisStateStores(client)
        for shop in TOKENS:
            cart = await state.carts.get(shop, "42")
            assert sum(line.quantity for line in cart.lines) == 2
    finally:
        stop.set()
        assert await asyncio.wait_for(worker, 60) == 0
        await client.aclose()


@pytest.mark.timeout(180)
async def test_a_flood_in_one_business_does_not_hold_back_another(
    redis_url: str, bot_api: BotApiDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every slot busy on one business's backlog, the other's shopper is served within a round."""
    stop = asyncio.Event()
    worker = start_worker(redis_url, bot_api, tmp_path, monkeypatch, "fair", stop)
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        for shop in TOKENS:  # warm both businesses' runtimes (catalog import, index)
            await client.lpush(queue_name(QUEUE_BASE, shop), message(1, 1, "hi"))
        await wait_until(lambda: len(bot_api.delivered("sendMessage")) >= 2, 120, "both businesses warmed up")
        flood = [message(100 + i, 1000 + i, f"tell me about {FIRST_PRODUCT['forge']}") for i in range(400)]
        await client.lpush(queue_name(QUEUE_BASE, "forge"), *flood)
        await asyncio.sleep(0.2)  # the flood is being served
        sent_at = time.time()
        await client.lpush(queue_name(QUEUE_BASE, "glow"), message(2, 2, f"tell me about {FIRST_PRODUCT['glow']}"))
        answered = await wait_until(lambda: [c for c in bot_api.delivered("sendMessage")
                                             if c.token == TOKENS["glow"] and str(c.params.get("chat_id")) == "2"],
                                    60, "the other business's answer")
        forge_done = sum(1 for c in bot_api.delivered("sendMessage") if c.token == TOKENS["forge"]
                         and c.at <= answered[0].at)
        # Served long before the flood drained: at most a few rounds of the shared slots went to forge first.
        assert forge_done < 200, f"{forge_done} forge replies went out before glow's one"
        assert answered[0].at - sent_at < 10
    finally:
        stop.set()
        await asyncio.wait_for(worker, 120)
        await client.aclose()
