"""What the production tests share: Telegram updates, a restartable Redis, worker processes.

Everything here is real: ``redis-server`` processes, the HTTP Bot API double, a slow
OpenAI-compatible HTTP server, and ``python -m chatpay.worker`` subprocesses stopped by pid.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-token-never-logged"
QUEUE = "chatpay_queue"
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


def cart_quantity(text: str) -> int:
    """The item count a cart reply states (0 when it shows no cart)."""
    found = QTY.search(text)
    return int(found.group(1)) if found else 0


async def wait_until(check: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
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
