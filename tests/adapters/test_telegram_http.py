"""The Bot API's aiohttp client: real HTTP servers, PTB's error types, the pool bound, no token in errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from telegram import Bot, InputFile
from telegram import error as tg

from chatpay.adapters.telegram_http import AiohttpRequest
from tests.support.botapi import BotApiDouble

TOKEN = "123456:SECRET-token-value"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(handler: Callable[[web.Request], Awaitable[web.Response]]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def slow_api() -> AsyncIterator[tuple[str, list[int]]]:
    """A Bot API that answers after 0.2 s, recording how many requests it held at once."""
    held = [0]
    peaks: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        held[0] += 1
        peaks.append(held[0])
        await asyncio.sleep(0.2)
        held[0] -= 1
        return web.json_response({"ok": True, "result": True})

    runner, url = await serve(handler)
    yield url, peaks
    await runner.cleanup()


async def test_sends_go_through_and_an_upload_arrives_as_a_file() -> None:
    with BotApiDouble() as api:
        request = AiohttpRequest()
        bot = Bot(TOKEN, base_url=f"{api.base_url}/bot", request=request)
        await bot.send_message(7, "héllo ✓")
        await bot.send_photo(7, InputFile(b"\x89PNG...", filename="pay.png"), caption="scan to pay")
        await request.shutdown()
        text, photo = api.delivered()
    assert text.params["text"] == "héllo ✓"
    assert photo.params["photo"] == "<file pay.png>" and photo.params["caption"] == "scan to pay"


async def test_no_more_connections_than_the_pool_allows(slow_api: tuple[str, list[int]]) -> None:
    url, peaks = slow_api
    request = AiohttpRequest(connections=3)
    bot = Bot(TOKEN, base_url=f"{url}/bot", request=request)
    await asyncio.gather(*(bot.send_chat_action(i, "typing")
                           for i in range(12)))
    await request.shutdown()
    assert len(peaks) == 12 and max(peaks) == 3


async def test_a_bot_api_that_does_not_answer_is_a_timeout_not_a_hang(slow_api: tuple[str, list[int]]) -> None:
    url, _ = slow_api
    request = AiohttpRequest(read_timeout=0.05)
    bot = Bot(TOKEN, base_url=f"{url}/bot", request=request)
    with pytest.raises(tg.TimedOut):
        await asyncio.wait_for(bot.send_message(1, "x"), 5)
    await request.shutdown()


async def test_a_connection_failure_is_a_network_error_without_the_token() -> None:
    request = AiohttpRequest(connect_timeout=2)
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{free_port()}/bot", request=request)
    with pytest.raises(tg.NetworkError) as caught:
        await bot.send_message(1, "x")
    await request.shutdown()
    assert "SECRET" not in str(caught.value) and "aiohttp." in str(caught.value)


def test_a_pool_of_no_connections_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="connections must be at least 1, got 0"):
        AiohttpRequest(connections=0)
