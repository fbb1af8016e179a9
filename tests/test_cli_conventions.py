"""``chatpay`` and ``chatpay-worker`` as a newcomer meets them: --version, --help, Ctrl-C, pipes.

Every command runs as a real process; the tests look only at what a user sees: exit codes,
standard output, and standard error (one line naming what is wrong, never a traceback).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatpay.cli import _parser as chatpay_parser
from chatpay.worker import parser as worker_parser

TOKEN = "123456:TEST-token-never-printed"
VERSION = importlib.metadata.version("chatpay")


def run(*argv: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], input=stdin, capture_output=True, text=True, timeout=180,
                          env=env)


def squeezed(text: str) -> str:
    """``text`` without any whitespace, so help wrapped at any terminal width compares equal."""
    return "".join(text.split())


# ----------------------------------------------------------------- --version, python -m chatpay


@pytest.mark.parametrize("command", [["-m", "chatpay"], ["-m", "chatpay.cli"]])
def test_version_prints_the_name_and_installed_version(command: list[str]) -> None:
    done = run(*command, "--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"chatpay {VERSION}\n", "")


def test_the_worker_has_a_version_too() -> None:
    done = run("-m", "chatpay.worker", "--version")
    assert (done.returncode, done.stdout) == (0, f"chatpay-worker {VERSION}\n")


def test_python_m_chatpay_works_like_chatpay() -> None:
    done = run("-m", "chatpay", "chat", "--json", stdin="add 2 of the ethiopian yirgacheffe\n")
    assert done.returncode == 0, done.stderr
    [reply] = [json.loads(line) for line in done.stdout.splitlines()]
    assert reply["intent"] == "cart_add"
    assert run("-m", "chatpay", "bogus").returncode == 2


# ----------------------------------------------------------------- --help


def _leaves(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that runs a command (``chatpay chat``, ``chatpay orders list``, ...)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaves(child)


def _expected_help(action: argparse.Action) -> str:
    """What the help must say about ``action``: its description, then its default if it has one."""
    text = action.help or ""
    if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text.lower():
        text += f" (default: {action.default})"
    return text


COMMANDS = [" ".join(p.prog.split()[1:]) for p in _leaves(chatpay_parser())]


def test_every_command_is_covered() -> None:
    assert {"chat", "catalog import", "eval", "webhook", "set-webhook", "orders list", "orders show",
            "orders refund", "orders export"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_commands_help_describes_every_option_and_its_default(command: str) -> None:
    [parser] = [p for p in _leaves(chatpay_parser()) if p.prog == f"chatpay {command}"]
    done = run("-m", "chatpay", *command.split(), "--help")
    assert done.returncode == 0 and done.stderr == ""
    shown = squeezed(done.stdout)
    assert parser.description, f"`chatpay {command} --help` says nothing about what the command does"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"chatpay {command}: {name} has no description"
        described = _expected_help(action)
        assert squeezed(described) in shown, f"chatpay {command} --help lacks {name}: {described!r}"
        if action.option_strings and not action.required and not isinstance(action, argparse._StoreTrueAction):
            assert "default" in described.lower(), f"chatpay {command}: {name} does not say its default"


def test_webhook_help_shows_the_defaults_and_the_variables_it_needs() -> None:
    shown = " ".join(run("-m", "chatpay", "webhook", "--help").stdout.split())
    assert "(default: 127.0.0.1)" in shown and "1-65535 (default: 8080)" in shown
    assert all(v in shown for v in ("TELEGRAM_WEBHOOK_SECRET", "REDIS_URL", "TELEGRAM_BOT_TOKEN"))


def test_chatpay_help_says_where_the_embedded_data_lives(tmp_path: Path) -> None:
    env = {**os.environ, "CHATPAY_DATA_DIR": str(tmp_path / "kept here")}
    done = run("-m", "chatpay", "--help", env=env)
    assert done.returncode == 0
    assert "Without MONGODB_URI, data is kept in" in done.stdout
    assert f"  {tmp_path / 'kept here'}\n" in done.stdout  # on a line of its own, never wrapped
    assert "set CHATPAY_DATA_DIR to move it" in done.stdout
    for command in ("chat", "catalog", "eval", "webhook", "set-webhook", "orders"):
        assert f"\n    {command}" in done.stdout


def test_worker_help_describes_every_option_and_its_default_without_markup() -> None:
    done = run("-m", "chatpay.worker", "--help")
    assert done.returncode == 0 and done.stderr == ""
    shown = squeezed(done.stdout)
    for action in worker_parser()._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"chatpay-worker {action.option_strings} has no description"
        assert squeezed(_expected_help(action)) in shown
    for option, default in (("--concurrency", "128"), ("--state-store", "auto"), ("--heartbeat-ttl", "15.0"),
                            ("--drain-timeout", "60.0"), ("--log-level", "INFO")):
        assert option in done.stdout and f"(default:{default})" in shown
    assert "TELEGRAM_BOT_TOKEN" in done.stdout and "REDIS_URL" in done.stdout
    for markup in ("[bold", "[/", "[dim", "[yellow", "[red", "``"):
        assert markup not in done.stdout


# ----------------------------------------------------------------- chatpay-worker's refusals


def _worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "REDIS_HOST", "TELEGRAM_BOT_TOKEN"}}
    env.update(extra)
    return env


def test_the_worker_names_every_missing_variable_at_once(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "chatpay.worker"], env=_worker_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("chatpay-worker: cannot start: TELEGRAM_BOT_TOKEN and REDIS_URL (or REDIS_HOST) "
                           "are not set")


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("REDIS_URL", "http://127.0.0.1:1/0", "REDIS_URL: "),
    ("MONGODB_URI", "mongodb://user:p@ss:word@@127.0.0.1/x", "MONGODB_URI: "),
])
def test_a_worker_start_up_failure_is_one_line(tmp_path: Path, variable: str, value: str, named: str) -> None:
    env = _worker_env(**{"TELEGRAM_BOT_TOKEN": TOKEN, "REDIS_URL": "redis://127.0.0.1:1/0", variable: value})
    done = subprocess.run([sys.executable, "-m", "chatpay.worker"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and TOKEN not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"chatpay-worker: {named}")


# ----------------------------------------------------------------- chat: Ctrl-C and pipes


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, within: float = 120) -> bytes:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + within
    while marker not in seen:
        assert time.monotonic() < deadline, f"no {marker!r} on stdout; got {seen[-500:]!r}"
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"stdout closed before {marker!r}; got {seen[-500:]!r}"
            seen += chunk
    return seen


def _interrupt(proc: subprocess.Popen[bytes]) -> tuple[float, bytes]:
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("Ctrl-C did not stop `chatpay chat`") from None
    return time.monotonic() - started, err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and select on pipes")
def test_ctrl_c_while_chat_waits_for_a_line_exits_130_at_once() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "chatpay", "chat", "--json"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"hi\n")
        proc.stdin.flush()
        _read_until(proc, b"\n")  # the first reply: now it waits for the next line, which never comes
        took, err = _interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert took < 5 and b"Traceback" not in err and b"KeyboardInterrupt" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")
def test_ctrl_c_at_the_terminal_prompt_exits_130_at_once() -> None:
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "chatpay", "chat"], stdin=follower, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    os.close(follower)
    try:
        banner = _read_until(proc, b"> ")
        assert b"Ctrl-C" in banner
        took, err = _interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert proc.returncode == 130
    assert took < 5 and b"Traceback" not in err and b"KeyboardInterrupt" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGPIPE exit status")
@pytest.mark.parametrize("flags", [["--json"], []])
def test_piping_chat_into_head_ends_quietly(flags: list[str]) -> None:
    """Like ``chatpay chat < questions.txt | head -1``: far more output than a pipe holds."""
    head = [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.readline())"]
    chat = subprocess.Popen([sys.executable, "-m", "chatpay", "chat", *flags], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert chat.stdout is not None
    reader = subprocess.Popen(head, stdin=chat.stdout, stdout=subprocess.PIPE)
    chat.stdout.close()  # only `head` reads it now
    chat.stdout = None
    _out, err = chat.communicate(b"add 1 of the ethiopian yirgacheffe\n" * 400, timeout=180)
    first, _ = reader.communicate(timeout=30)
    assert first.strip()
    assert chat.returncode == 141, err.decode()[-2000:]
    text = err.decode()
    assert "Traceback" not in text and "BrokenPipe" not in text and "Exception ignored" not in text

