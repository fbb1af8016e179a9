"""A local HTTP server that plays the Telegram Bot API, for tests in this process or others.

It serves ``/bot<token>/<method>`` on 127.0.0.1 from a background thread, answers the way
Telegram does (``{"ok": true, "result": ...}`` shapes that python-telegram-bot accepts), records
every call and checks what it receives against Telegram's limits (see :mod:`botapi_rules
<tests.support.botapi_rules>`). A call that breaks a limit is recorded as a violation and, like
Telegram, answered with 400.

Use it as a context manager, for example in a module-local fixture (importing the ``bot_api``
fixture below works too, but ruff then reports F811 at each use)::

    @pytest.fixture
    def bot_api() -> Iterator[BotApiDouble]:
        with BotApiDouble() as double:
            yield double

    async def test_x(bot_api: BotApiDouble) -> None:
        channel = TelegramChannel("123:abc", base_url=bot_api.base_url)
        ...
        assert bot_api.methods() == ["sendMessage"] and not bot_api.violations

Other processes read the same records over HTTP (``GET /_records``), steer failures with
``POST /_control`` (``{"fail": 2, "status": 500}``, ``{"flood": 1, "retry_after": 1}``,
``{"reject_html": 1}``) and clear them with ``POST /_reset``; :class:`RemoteBotApi` wraps that.
``python -m tests.support.botapi --port 8081`` runs the double on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

import pytest
from aiohttp import web

from tests.support.botapi_rules import JSON_FIELDS, check_call, uses_html
from tests.support.redis_server import free_port

BOT_USER = {"id": 777000111, "is_bot": True, "first_name": "ChatPay Test", "username": "chatpay_test_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
TRUE_METHODS = {"sendchataction", "answercallbackquery", "answerprecheckoutquery", "setwebhook",
                "deletewebhook", "setmycommands", "deletemessage", "refundstarpayment"}


@dataclass(frozen=True)
class ApiCall:
    """One request the double received: method, decoded params, wall-clock time, answer status."""

    method: str
    params: dict[str, Any]
    at: float
    status: int
    token: str = ""


@dataclass(frozen=True)
class Violation:
    """A request that broke one of Telegram's limits."""

    method: str
    problem: str
    params: dict[str, Any]


@dataclass
class _Failure:
    status: int
    body: dict[str, Any]
    html_only: bool = False


def _decode_params(raw: dict[str, Any]) -> dict[str, Any]:
    """Form fields arrive as strings; Telegram reads the object-valued ones as JSON."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and key in JSON_FIELDS:
            try:
                value = json.loads(value)
            except ValueError:
                pass  # left as a string; the rules report it
        params[key] = value
    return params


class BotApiDouble:
    """The Bot API on a free loopback port, in a background thread.

    Attributes:
        strict: Answer a call that breaks a limit with 400 (as Telegram does), besides recording it.
    """

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self.port = 0
        self._lock = threading.Lock()
        self._calls: list[ApiCall] = []
        self._violations: list[Violation] = []
        self._failures: list[_Failure] = []
        self._message_ids = itertools.count(1)
        self._webhook_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """What ``TELEGRAM_API_BASE_URL`` should be: ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/_records", self._records_handler)
        app.router.add_post("/_control", self._control_handler)
        app.router.add_post("/_reset", self._reset_handler)
        app.router.add_route("*", "/bot{token}/{method}", self._api_handler)
        return app

    def start(self) -> BotApiDouble:
        """Serve on a free port from a daemon thread; returns once it accepts connections."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name="bot-api-double", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise RuntimeError(f"the Bot API double failed to start: {errors[0]!r}")
        return self

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        for _attempt in range(5):
            self.port = free_port()
            try:
                await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
                return
            except OSError:
                continue
        raise RuntimeError("no free port for the Bot API double")

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> BotApiDouble:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------ steering and records

    def fail_next(self, count: int = 1, *, status: int = 500, description: str = "Internal Server Error") -> None:
        """Answer the next ``count`` calls with ``status``."""
        body = {"ok": False, "error_code": status, "description": description}
        with self._lock:
            self._failures.extend(_Failure(status, body) for _ in range(count))

    def flood_next(self, count: int = 1, *, retry_after: int = 1) -> None:
        """Answer the next ``count`` calls with 429 and ``retry_after`` seconds."""
        body = {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after}}
        with self._lock:
            self._failures.extend(_Failure(429, body) for _ in range(count))

    def reject_html_next(self, count: int = 1) -> None:
        """Answer the next ``count`` calls that use HTML parse mode with 400 "can't parse entities"."""
        body = {"ok": False, "error_code": 400,
                "description": "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0"}
        with self._lock:
            self._failures.extend(_Failure(400, body, html_only=True) for _ in range(count))

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._violations.clear()
            self._failures.clear()

    @property
    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    @property
    def violations(self) -> list[Violation]:
        with self._lock:
            return list(self._violations)

    def delivered(self, method: str | None = None) -> list[ApiCall]:
        """Calls answered with 200 (optionally of one method), in the order they arrived."""
        return [c for c in self.calls if c.status == 200 and (method is None or c.method == method)]

    def methods(self) -> list[str]:
        """Methods of the delivered calls, in order."""
        return [c.method for c in self.delivered()]

    # ------------------------------------------------------------ HTTP

    async def _api_handler(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                raw.update(body if isinstance(body, dict) else {})
            else:
                form = await request.post()
                raw.update({k: v for k, v in form.items() if isinstance(v, str)})
                raw.update({k: f"<file {v.filename}>" for k, v in form.items() if not isinstance(v, str)})
        params = _decode_params(raw)
        status, body = self._answer(method, params)
        with self._lock:
            self._calls.append(ApiCall(method, params, time.time(), status, request.match_info["token"]))
        return web.json_response(body, status=status)

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            for i, failure in enumerate(self._failures):
                if not failure.html_only or uses_html(params):
                    del self._failures[i]
                    return failure.status, failure.body
        problems = check_call(method, params)
        if problems:
            with self._lock:
                self._violations.extend(Violation(method, p, params) for p in problems)
            if self.strict:
                return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {problems[0]}"}
        result = self._result(method.lower(), params)
        if result is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        return 200, {"ok": True, "result": result}

    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = params.get("chat_id", 0)
        try:
            chat: dict[str, Any] = {"id": int(chat_id), "type": "private" if int(chat_id) > 0 else "supergroup"}
        except (TypeError, ValueError):
            chat = {"id": -1001, "type": "channel", "username": str(chat_id).lstrip("@")}
        if chat["type"] == "supergroup":
            chat["title"] = "group"
        return {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, "from": BOT_USER,
                **content}

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        photo = [{"file_id": "AgAC-photo", "file_unique_id": "AQAD", "width": 90, "height": 90}]
        if method == "sendmessage":
            return self._message(params, text=str(params.get("text", "")))
        if method == "sendphoto":
            return self._message(params, photo=photo, caption=str(params.get("caption", "")))
        if method == "sendmediagroup":
            media = params.get("media") if isinstance(params.get("media"), list) else []
            return [self._message(params, photo=photo, media_group_id="mg1",
                                  **({"caption": m["caption"]} if isinstance(m, dict) and m.get("caption") else {}))
                    for m in media]
        if method == "sendinvoice":
            prices = params.get("prices") if isinstance(params.get("prices"), list) else []
            total = sum(int(p.get("amount", 0)) for p in prices if isinstance(p, dict))
            return self._message(params, invoice={"title": params.get("title", ""), "start_parameter": "",
                                                  "description": params.get("description", ""),
                                                  "currency": params.get("currency", ""), "total_amount": total})
        if method == "getme":
            return BOT_USER
        if method == "setwebhook":
            self._webhook_url = str(params.get("url", ""))
        if method == "getwebhookinfo":
            return {"url": self._webhook_url, "has_custom_certificate": False, "pending_update_count": 0}
        if method in TRUE_METHODS:
            return True
        return None

    async def _records_handler(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": [asdict(c) for c in self.calls],
                                  "violations": [asdict(v) for v in self.violations]})

    async def _control_handler(self, request: web.Request) -> web.Response:
        order = await request.json()
        if order.get("fail"):
            self.fail_next(int(order["fail"]), status=int(order.get("status", 500)))
        if order.get("flood"):
            self.flood_next(int(order["flood"]), retry_after=int(order.get("retry_after", 1)))
        if order.get("reject_html"):
            self.reject_html_next(int(order["reject_html"]))
        return web.json_response({"ok": True})

    async def _reset_handler(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


class RemoteBotApi:
    """Reads and steers a :class:`BotApiDouble` running in another process."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def _post(self, path: str, body: dict[str, Any]) -> None:
        req = urllib.request.Request(f"{self.base_url}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """``{"calls": [...], "violations": [...]}`` as the double holds them now."""
        with urllib.request.urlopen(f"{self.base_url}/_records", timeout=5) as resp:
            data: dict[str, list[dict[str, Any]]] = json.loads(resp.read())
        return data

    def control(self, **order: int) -> None:
        """For example ``control(fail=2, status=500)`` or ``control(flood=1, retry_after=2)``."""
        self._post("/_control", order)

    def reset(self) -> None:
        self._post("/_reset", {})


@pytest.fixture
def bot_api() -> Iterator[BotApiDouble]:
    """A fresh Bot API double for one test."""
    with BotApiDouble() as double:
        yield double


def main(argv: list[str] | None = None) -> int:
    """Run the double in the foreground until SIGTERM or Ctrl-C (prints its base URL)."""
    parser = argparse.ArgumentParser(description="a local Telegram Bot API double")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    double = BotApiDouble()

    async def serve() -> None:
        runner = web.AppRunner(double.app(), access_log=None)
        await runner.setup()
        double.port = args.port or free_port()
        await web.TCPSite(runner, "127.0.0.1", double.port).start()
        print(double.base_url, flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
