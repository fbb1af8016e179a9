"""The test doubles themselves: the Bot API double catches what Telegram refuses; redis-server stops by pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.botapi import BotApiDouble, RemoteBotApi
from tests.support.botapi_rules import check_call, parse_html
from tests.support.redis_server import RedisServer

OK_BUTTON = {"inline_keyboard": [[{"text": "Add", "callback_data": "add:1"}]]}


def photo(caption: str = "c") -> dict[str, Any]:
    return {"type": "photo", "media": "https://x/1.jpg", "caption": caption}


@pytest.mark.parametrize(("method", "params", "problem"), [
    ("sendMessage", {"chat_id": 1, "text": "x" * 4097}, "too long"),
    ("sendMessage", {"chat_id": 1, "text": "🧦" * 2049}, "too long"),  # UTF-16: 4098 units
    ("sendMessage", {"chat_id": 1, "text": " \n"}, "empty"),
    ("sendMessage", {"chat_id": 1, "text": "<b>x", "parse_mode": "HTML"}, "unclosed <b>"),
    ("sendMessage", {"chat_id": 1, "text": "<b>x</i></b>", "parse_mode": "HTML"}, "unexpected end tag"),
    ("sendMessage", {"chat_id": 1, "text": "<br>x", "parse_mode": "HTML"}, "unsupported start tag"),
    ("sendMessage", {"chat_id": 1, "text": "a & b", "parse_mode": "HTML"}, "unescaped '&'"),
    ("sendMessage", {"chat_id": 1, "text": "a < b", "parse_mode": "HTML"}, "unescaped '<'"),
    ("sendMessage", {"chat_id": 1, "text": "&nbsp;", "parse_mode": "HTML"}, "unescaped '&'"),
    ("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": {"inline_keyboard": [[
        {"text": "A", "callback_data": "é" * 33}]]}}, "BUTTON_DATA_INVALID"),
    ("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": {"inline_keyboard": [[
        {"text": "", "callback_data": "a"}]]}}, "without text"),
    ("sendPhoto", {"chat_id": 1, "photo": "https://x/1.jpg", "caption": "c" * 1025}, "caption is too long"),
    ("sendMediaGroup", {"chat_id": 1, "media": [photo()]}, "2-10"),
    ("sendMediaGroup", {"chat_id": 1, "media": [photo()] * 11}, "2-10"),
    ("sendMediaGroup", {"chat_id": 1, "media": [photo(), photo()], "reply_markup": OK_BUTTON}, "no buttons"),
    ("sendInvoice", {"chat_id": 1, "title": "t" * 33, "description": "d", "payload": "p", "currency": "EUR",
                     "prices": [{"label": "x", "amount": 1}]}, "title"),
    ("sendInvoice", {"chat_id": 1, "title": "t", "description": "d", "payload": "p", "currency": "XTR",
                     "provider_token": "tok", "prices": [{"label": "x", "amount": 1}]}, "empty provider_token"),
    ("answerCallbackQuery", {"callback_query_id": "q", "text": "x" * 201}, "200"),
    ("answerPreCheckoutQuery", {"pre_checkout_query_id": "q", "ok": "false"}, "error_message"),
])
def test_the_rules_catch_what_telegram_refuses(method: str, params: dict[str, Any], problem: str) -> None:
    found = check_call(method, params)
    assert any(problem in p for p in found), found


def test_the_rules_pass_what_telegram_accepts() -> None:
    text = '<b>Socks</b> &lt;3 &amp; <a href="https://x">more</a> &#128512; <tg-spoiler>s</tg-spoiler>'
    assert parse_html(text) == ("Socks <3 & more 😀 s", [])
    assert check_call("sendMessage", {"chat_id": 1, "text": text, "parse_mode": "HTML",
                                      "reply_markup": OK_BUTTON}) == []
    assert check_call("sendMessage", {"chat_id": 1, "text": "🧦" * 2048}) == []
    assert check_call("sendMediaGroup", {"chat_id": 1, "media": [photo()] * 10}) == []


def test_violations_are_answered_400_and_recorded() -> None:
    with BotApiDouble() as double:
        remote = RemoteBotApi(double.base_url)
        request = urllib.request.Request(f"{double.base_url}/bot1:x/sendMessage",
                                         data=json.dumps({"chat_id": 1, "text": ""}).encode(),
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 400
        assert json.loads(caught.value.read())["description"] == "Bad Request: message text is empty"
        records = remote.records()
        assert [c["status"] for c in records["calls"]] == [400]
        assert records["violations"][0]["problem"] == "message text is empty"


def test_other_processes_can_steer_and_read_the_double() -> None:
    with BotApiDouble() as double:
        remote = RemoteBotApi(double.base_url)
        remote.control(fail=1, status=502)
        script = ("import urllib.request, sys\n"
                  "for _ in range(2):\n"
                  "    try:\n"
                  f"        urllib.request.urlopen('{double.base_url}/bot1:x/getMe', timeout=5)\n"
                  "    except Exception as exc:\n"
                  "        print(exc)\n")
        subprocess.run([sys.executable, "-c", script], check=True, timeout=30, env={"PATH": os.environ["PATH"]})
        assert [(c["method"], c["status"]) for c in remote.records()["calls"]] == [("getMe", 502), ("getMe", 200)]
        remote.reset()
        assert remote.records() == {"calls": [], "violations": []}


def test_redis_server_starts_on_a_free_port_and_stops_by_pid() -> None:
    server = RedisServer().start()
    pid = server.pid
    try:
        os.kill(pid, 0)  # alive
        assert server.url.startswith("redis://127.0.0.1:")
    finally:
        server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
