"""chatpay-worker runs on uvloop's event loop when it is installed (the server install has it)."""

from __future__ import annotations

import asyncio

import pytest

from chatpay.worker import run_loop


def test_the_worker_loop_is_uvloops_and_returns_what_the_coroutine_returns() -> None:
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not built for this platform (Windows)")

    async def which() -> tuple[str, int]:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__, 42

    module, answer = run_loop(which())
    assert module.startswith("uvloop") and answer == 42
    assert uvloop.__version__
