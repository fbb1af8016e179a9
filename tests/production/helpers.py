"""What the production tests share: Telegram updates, a restartable Redis, worker processes.

Everything here is real: ``redis-server`` processes, the HTTP Bot API double, a slow
OpenAI-compatible HTTP server, and ``python -m chatpay.worker`` subprocesses stopped by pid.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from chatpay.adapters.redis import RedisKeys, queue_name
from tests.support.redis_cluster import is_cluster
from tests.support.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-token-never-logged"
BUSINESS = "demo"
QUEUE = queue_name("chatpay_queue", BUSINESS)  # what the webhook LPUSHes onto for the demo business
KEYS = RedisKeys()


def cart_key(user: int, business: str = BUSINESS) -> str:
    """The Redis key of a shopper's cart (the worker's Redis state store)."""
    return KEYS.cart(business, str(user))


def outcome_key(update_id: int, business: str = BUSINESS) -> str:
    """The Redis key of an update's recorded outcome."""
    return KEYS.outcome(business, update_id)
QTY = re.compile(r"Subtotal \((\d+) items?\)")


def message(update_id: int, user: int, text: str) -> str:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_760_000_000, "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": f"User {user}"}, "text": text}})


def callback(update_id: int, user: int, data: str, query_id: str) -> str:
    return json.dumps({"update_id": update_id, "callback_query": {
        "id": query_id, "chat_instance": "ci", "data": data,
        "from": {"id": user, "is_bot": False, "first_name": f"User {user}"},
        "message": {"message_id": 1, "date": 1_760_000_000, "chat": {"id": user, "type": "private"}}}})


def pre_checkout(update_id: int, user: int, query_id: str, payload: str = "cp1:0:x") -> str:
    return json.dumps({"update_id": update_id, "pre_checkout_query": {
        "id": query_id, "from": {"id": user, "is_bot": False, "first_name": f"User {user}"},
        "currency": "EUR", "total_amount": 1390, "invoice_payload": payload}})


def reply_kind(text: str) -> str:
    """``add`` for the answer to "add 1 ...", ``view`` for a cart shown, else ``other``."""
    if text.startswith("Added"):
        return "add"
    return "view" if text.startswith("Your cart") else "other"


def cart_quantity(text: str) -> int:
    """The item count a cart reply states (0 when it shows no cart)."""
    found = QTY.search(text)
    return int(found.group(1)) if found else 0


async def wait_until(check: Callable[[], Any], within: float, what: str, step: float = 0.05) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(step)


class PersistentRedis(RedisServer):
    """A redis-server that writes every change to its append-only file and can be restarted in place."""

    def __init__(self) -> None:
        super().__init__(extra_args=("--appendonly", "yes", "--appendfsync", "always"))

    def restart(self, down_for: float = 1.0) -> None:
        """Stop the server (SIGTERM) and start it again on the same port and directory."""
        from tests.support import redis_server as support

        proc = self._proc
        assert proc is not None and support.REDIS_SERVER is not None
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        time.sleep(down_for)
        self._proc = subprocess.Popen(
            [support.REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", self._dir, "--protected-mode", "no", "--loglevel", "warning", *self._extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.pid = self._proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if support._command(self.port, "PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not come back")


def worker_env(redis_url: str, bot_api_url: str, worker_id: str, **extra: str) -> dict[str, str]:
    """The environment of one ``chatpay-worker`` process: only what it needs, no secrets of ours."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV"}}
    env.update({"REDIS_URL": redis_url, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": bot_api_url,
                "WORKER_ID": worker_id, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    if is_cluster(redis_url):  # a cluster's URL (tests.support.redis_cluster.RedisUrl)
        env["REDIS_CLUSTER"] = "1"
    env.update(extra)
    return env


class WorkerProcess:
    """One ``python -m chatpay.worker`` subprocess; its JSON log lines go to a file."""

    def __init__(self, env: dict[str, str], *args: str, log_dir: Path | None = None) -> None:
        self.worker_id = env["WORKER_ID"]
        log_dir = log_dir or Path(tempfile.mkdtemp(prefix="chatpay-worker-"))
        self.log_path = log_dir / f"{self.worker_id}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "chatpay.worker", *args], env=env, cwd=log_dir,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(10)

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out


class SlowOpenAI:
    """An OpenAI-compatible chat server that takes ``delay`` seconds per answer (a slow LLM)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.port = 0
        self.calls = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        await asyncio.sleep(self.delay)
        schema = body.get("response_format") or {}
        content = json.dumps({"intent": "chitchat", "confidence": 0.9}) if schema else "Hello from a slow model!"
        return web.json_response({
            "id": "c1", "object": "chat.completion", "created": 1, "model": body.get("model", "m"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

    def start(self) -> SlowOpenAI:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            self.port = free_port()
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


PRODUCTS = ("Kenyan AA Nyeri", "Guatemala Antigua", "Brazilian Cerrado", "Midnight Dark Roast", "Swiss Water Decaf")
VIEW = "what's in my cart?"


@dataclass
class Plan:
    """Updates to push (in order) and, per user, the item count each reply must show."""

    pushes: list[tuple[int, int, str]] = field(default_factory=list)  # (update_id, user, text)
    expected: dict[int, list[tuple[str, int]]] = field(default_factory=dict)  # (add | view, item count)
    adds: dict[int, int] = field(default_factory=dict)


def shopping_plan(users: int, per_user: int, *, first_user: int = 1000, seed: int = 7) -> Plan:
    """Each user adds products and looks at the cart, in order; users interleave at random."""
    rng = random.Random(seed)
    plan = Plan()
    scripts: dict[int, list[str]] = {}
    for user in range(first_user, first_user + users):
        texts = [f"add 1 {rng.choice(PRODUCTS)}" if i == 0 or rng.random() < 0.7 else VIEW for i in range(per_user)]
        scripts[user] = texts
        count, expected = 0, []
        for text in texts:
            count += text.startswith("add")
            expected.append(("add" if text.startswith("add") else "view", count))
        plan.expected[user], plan.adds[user] = expected, count
    cursors = dict.fromkeys(scripts, 0)
    update_id = 0
    while cursors:
        user = rng.choice(sorted(cursors))
        update_id += 1
        plan.pushes.append((update_id, user, scripts[user][cursors[user]]))
        cursors[user] += 1
        if cursors[user] == per_user:
            del cursors[user]
    return plan


def audit(plan: Plan, replies: list[tuple[str, str]], carts: dict[int, int], outcomes: dict[int, Any]) -> dict[str, int]:
    """Check what each user received against the plan.

    ``replies`` are ``(chat_id, text)`` in the order the Bot API received them; ``carts`` the
    final item count per user; ``outcomes`` each update's recorded outcome in Redis (or None).
    A reply repeated right after itself with the same text is an identical replay (allowed,
    counted); anything else out of place is an order violation; an update whose reply never
    came, or whose outcome is missing or unsent, is lost.
    """
    by_chat: dict[str, list[str]] = {}
    for chat, text in replies:
        by_chat.setdefault(chat, []).append(text)
    lost = duplicates = violations = doubled = 0
    for user, expected in plan.expected.items():
        got = by_chat.get(str(user), [])
        j = 0
        previous: str | None = None
        for text in got:
            if j < len(expected) and (reply_kind(text), cart_quantity(text)) == expected[j]:
                j += 1
            elif text == previous:
                duplicates += 1
            else:
                violations += 1
            previous = text
        lost += len(expected) - j
        doubled += carts.get(user, 0) != plan.adds[user]
    unfinished = sum(1 for o in outcomes.values() if not o or int(o.get("sent", 0)) < len(o.get("messages", [])))
    return {"updates": len(plan.pushes), "replies": len(replies), "lost": max(lost, unfinished),
            "duplicate_replies": duplicates, "doubled_effects": doubled, "order_violations": violations}
