"""TelegramChannel against a local Bot API double: what arrives, in what order, after which failures."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from telegram import error as tg

from chatpay.adapters.telegram import TelegramChannel, html_to_plain
from chatpay.config import Settings
from chatpay.core.errors import ChannelError, ConfigError, RetryAfter
from chatpay.core.ports import OutgoingMessage
from chatpay.core.presenter import TelegramPresenter
from chatpay.core.turns import Reply
from tests.core.test_presenter import card, replies
from tests.support.botapi import BotApiDouble

TOKEN = "123456:SECRET-token-value"


def html(text: str, **extra: object) -> OutgoingMessage:
    return OutgoingMessage("sendMessage", {"chat_id": "42", "text": text, "parse_mode": "HTML", **extra})


@pytest.fixture
def bot_api() -> Iterator[BotApiDouble]:
    with BotApiDouble() as double:
        yield double


class RecordingLimiter:
    """Stands in for the shared Redis limiter: records what the channel asked of it."""

    def __init__(self) -> None:
        self.acquired: list[str] = []
        self.paused: list[float] = []

    async def acquire(self, chat_id: str) -> None:
        self.acquired.append(chat_id)

    async def pause(self, seconds: float) -> None:
        self.paused.append(seconds)


def channel(double: BotApiDouble, **options: object) -> TelegramChannel:
    options.setdefault("retry_delays", (0.01, 0.02, 0.04))
    return TelegramChannel(TOKEN, base_url=double.base_url, **options)  # type: ignore[arg-type]


async def test_messages_arrive_in_order_with_html_and_buttons_intact(bot_api: BotApiDouble) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Add", "callback_data": "add:red-socks"}]]}
    out = TelegramPresenter().render("42", Reply("Many socks", cards=tuple(card(i) for i in range(5))))
    async with channel(bot_api) as ch:
        await ch.send("42", [html("<b>Red socks</b> &amp; more", reply_markup=keyboard), *out])
    calls = bot_api.delivered()
    assert [c.method for c in calls] == ["sendMessage", "sendMessage", "sendMediaGroup", "sendMessage"]
    assert calls[0].params == {"chat_id": "42", "text": "<b>Red socks</b> &amp; more", "parse_mode": "HTML",
                               "reply_markup": keyboard}
    assert [m["media"] for m in calls[2].params["media"]] == [f"https://shop.example/{i}.jpg" for i in range(5)]
    assert calls[2].params["media"][0]["parse_mode"] == "HTML"
    assert calls[0].token == TOKEN and not bot_api.violations


async def test_html_telegram_cannot_parse_is_sent_again_as_plain_text(bot_api: BotApiDouble) -> None:
    bot_api.reject_html_next(1)
    async with channel(bot_api) as ch:
        await ch.send("42", [html("<b>a &lt; b</b> &amp; c")])
    first, second = bot_api.calls
    assert first.status == 400 and second.status == 200
    assert second.params == {"chat_id": "42", "text": "a < b & c"}


async def test_a_429_is_honoured_and_nothing_is_dropped(bot_api: BotApiDouble) -> None:
    bot_api.flood_next(1, retry_after=1)
    limiter = RecordingLimiter()
    async with channel(bot_api, rate_limiter=limiter) as ch:
        await ch.send("42", [html("one"), html("two"), html("three")])
    calls = bot_api.calls
    assert [c.status for c in calls] == [429, 200, 200, 200]
    assert [c.params["text"] for c in bot_api.delivered()] == ["one", "two", "three"]
    assert calls[1].at - calls[0].at >= 0.95  # waited retry_after before sending again
    assert limiter.paused == [1.0]  # every worker pauses, through the shared limiter
    assert limiter.acquired == ["42"] * 4  # a slot before each attempt


async def test_endless_flooding_raises_retry_after_for_the_caller(bot_api: BotApiDouble) -> None:
    bot_api.flood_next(5, retry_after=300)
    async with channel(bot_api, max_retry_after=60) as ch:
        with pytest.raises(RetryAfter) as caught:
            await ch.send("42", [html("hello")])
    assert caught.value.retry_after == 300 and isinstance(caught.value.__cause__, tg.RetryAfter)
    assert len(bot_api.calls) == 1


async def test_server_errors_are_retried_with_backoff(bot_api: BotApiDouble) -> None:
    bot_api.fail_next(2, status=500)
    bot_api.fail_next(1, status=502, description="Bad Gateway")
    async with channel(bot_api) as ch:
        await ch.send("42", [html("hello")])
    assert [c.status for c in bot_api.calls] == [500, 500, 502, 200]


async def test_server_errors_that_persist_raise_channel_error(bot_api: BotApiDouble) -> None:
    bot_api.fail_next(10, status=503)
    async with channel(bot_api) as ch:
        with pytest.raises(ChannelError, match="failed after 4 tries") as caught:
            await ch.send("42", [html("hello")])
    assert isinstance(caught.value.__cause__, tg.NetworkError) and len(bot_api.calls) == 4


async def test_a_network_failure_is_retried_then_reported() -> None:
    with BotApiDouble() as double:
        base = double.base_url
    async with TelegramChannel(TOKEN, base_url=base, retry_delays=(0.01,)) as ch:  # nothing listens now
        with pytest.raises(ChannelError, match="failed after 2 tries") as caught:
            await ch.send("42", [html("hello")])
    assert TOKEN not in str(caught.value)


async def test_a_refusal_is_not_retried(bot_api: BotApiDouble) -> None:
    bot_api.fail_next(1, status=403, description="Forbidden: bot was blocked by the user")
    async with channel(bot_api) as ch:
        with pytest.raises(ChannelError, match="blocked"):
            await ch.send("42", [html("hello")])
    assert len(bot_api.calls) == 1


async def test_a_photo_telegram_cannot_fetch_goes_out_as_its_caption(bot_api: BotApiDouble) -> None:
    bot_api.fail_next(1, status=400, description="Bad Request: wrong file identifier/HTTP URL specified")
    out = TelegramPresenter().render("42", Reply("", cards=(card(1),)))
    async with channel(bot_api) as ch:
        await ch.send("42", out)
    (sent,) = bot_api.delivered()
    assert sent.method == "sendMessage" and sent.params["text"] == out[0].params["caption"]
    assert sent.params["reply_markup"] == out[0].params["reply_markup"]


async def test_callbacks_typing_and_pre_checkout_answers(bot_api: BotApiDouble) -> None:
    limiter = RecordingLimiter()
    async with channel(bot_api, rate_limiter=limiter) as ch:
        await ch.answer_callback("cbq-1", "Added " + "x" * 300)
        await ch.answer_callback("cbq-2")
        await ch.send_typing("42")
        await ch.answer_pre_checkout("pcq-1", True)
        await ch.answer_pre_checkout("pcq-2", False, "Sold out since you ordered")
    assert [(c.method, c.params) for c in bot_api.calls] == [
        ("answerCallbackQuery", {"callback_query_id": "cbq-1", "text": "Added " + "x" * 194}),
        ("answerCallbackQuery", {"callback_query_id": "cbq-2"}),
        ("sendChatAction", {"chat_id": "42", "action": "typing"}),
        ("answerPreCheckoutQuery", {"pre_checkout_query_id": "pcq-1", "ok": "true"}),
        ("answerPreCheckoutQuery", {"pre_checkout_query_id": "pcq-2", "ok": "false",
                                    "error_message": "Sold out since you ordered"}),
    ]
    assert limiter.acquired == []  # answers are not messages: they never wait behind the limiter
    assert not bot_api.violations


async def test_an_expired_callback_query_is_let_go_and_typing_never_raises(bot_api: BotApiDouble) -> None:
    bot_api.fail_next(1, status=400, description="Bad Request: query is too old and response timeout expired")
    bot_api.fail_next(1, status=500)
    async with channel(bot_api) as ch:
        await ch.answer_callback("old")
        await ch.send_typing("42")
    assert [c.status for c in bot_api.calls] == [400, 500]


async def test_the_token_never_reaches_the_logs(bot_api: BotApiDouble, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bot_api.fail_next(1, status=500)
    async with channel(bot_api) as ch:
        await ch.send("42", [html("hello")])
    assert any("sendMessage" in r.getMessage() for r in caplog.records)  # PTB did log the call...
    assert all(TOKEN not in r.getMessage() for r in caplog.records)  # ...without the token


def test_from_settings_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        TelegramChannel.from_settings(Settings())
    ch = TelegramChannel.from_settings(Settings(telegram_bot_token=TOKEN, telegram_api_base_url="http://127.0.0.1:9"))
    assert ch.bot.base_url == f"http://127.0.0.1:9/bot{TOKEN}"


def test_html_to_plain() -> None:
    assert html_to_plain("<b>Socks</b> &lt;3 &amp; <i>more</i>") == "Socks <3 & more"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(reply=replies)
def test_any_reply_reaches_telegram_within_its_limits(bot_api: BotApiDouble, reply: Reply) -> None:
    bot_api.reset()
    messages = TelegramPresenter().render("-100200", reply)

    async def deliver() -> None:
        async with channel(bot_api) as ch:
            await ch.send("-100200", messages)

    started = time.monotonic()
    asyncio.run(deliver())
    assert not bot_api.violations, bot_api.violations[0].problem
    assert len(bot_api.delivered()) == len(messages) == len(bot_api.calls)
    assert time.monotonic() - started < 10
