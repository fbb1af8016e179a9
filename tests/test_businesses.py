"""CHATPAY_BUSINESSES: the businesses one deployment serves, and `chatpay business list|show`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from chatpay.businesses import load_businesses, settings_for
from chatpay.cli import main
from chatpay.config import load_settings
from chatpay.core.errors import ConfigError

TWO = """
[[business]]
id = "acme"
name = "Acme Audio"
catalog = "acme.json"
currency = "USD"
bot_token_env = "ACME_BOT_TOKEN"
webhook_secret_env = "ACME_WEBHOOK_SECRET"
top_k = 4
payments = "stars"

[business.budget]
daily_tokens = 1000
monthly_usd = "5.10"

[[business]]
id = "bikes"
name = "Bike Barn"
bot_token_env = "BIKES_BOT_TOKEN"
webhook_secret_env = "BIKES_WEBHOOK_SECRET"
"""

SECRETS = {"ACME_BOT_TOKEN": "123456:AAAA-secret-part", "ACME_WEBHOOK_SECRET": "acme-secret",
           "BIKES_BOT_TOKEN": "777:BBBB-secret", "BIKES_WEBHOOK_SECRET": "bikes-secret"}


@pytest.fixture
def deployment(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "acme.json").write_text("[]")
    (tmp_path / "businesses.toml").write_text(TWO)
    return {"CHATPAY_BUSINESSES": str(tmp_path / "businesses.toml"), **SECRETS}


def test_each_business_gets_its_own_bot_secret_and_settings(deployment: dict[str, str]) -> None:
    settings = load_settings(deployment, env_file=Path("/nonexistent"))
    businesses = load_businesses(settings, deployment)
    assert list(businesses) == ["acme", "bikes"]
    acme = businesses["acme"]
    assert (acme.bot_token, acme.webhook_secret, acme.bot_id) == ("123456:AAAA-secret-part", "acme-secret", "123456")
    assert acme.budget.monthly_usd == Decimal("5.10") and acme.budget.daily_tokens == 1000
    seen = settings_for(settings, acme)
    assert (seen.business_id, seen.top_k, seen.payments, seen.telegram_bot_token) == (
        "acme", 4, "stars", "123456:AAAA-secret-part")
    assert settings_for(settings, businesses["bikes"]).telegram_webhook_secret == "bikes-secret"
    assert "AAAA-secret-part" not in repr(acme) and "acme-secret" not in repr(acme)


def test_without_the_file_the_single_business_variables_are_the_one_business() -> None:
    env = {"BUSINESS_ID": "shop", "TELEGRAM_BOT_TOKEN": "9:x", "TELEGRAM_WEBHOOK_SECRET": "s"}
    businesses = load_businesses(load_settings(env, env_file=Path("/nonexistent")), env)
    assert not businesses.many and list(businesses) == ["shop"]
    assert businesses["shop"].bot_token == "9:x"


def test_every_problem_in_the_file_is_named_at_once(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text(
        '[[business]]\nid = "Bad Id"\nbot_token_env = "UNSET_TOKEN"\nwebhook_secret_env = "S"\ncolour = 1\n'
        'catalog = "missing.json"\n[business.budget]\ndaily_usd = "-1"\n'
        '[[business]]\nid = "ok"\nbot_token_env = "T"\nwebhook_secret_env = "S"\n'
        '[[business]]\nid = "ok"\nbot_token_env = "T"\nwebhook_secret_env = "S"\n')
    env = {"CHATPAY_BUSINESSES": str(tmp_path / "b.toml"), "T": "1:x", "S": "s"}
    with pytest.raises(ConfigError) as caught:
        load_businesses(load_settings(env, env_file=Path("/nonexistent")), env)
    message = str(caught.value)
    for expected in ("business 1 ('Bad Id'): unknown key 'colour'", "id must be 1-63 characters",
                     "bot_token_env names UNSET_TOKEN, which is not set", "catalog 'missing.json' is not a file",
                     "budget.daily_usd must be a positive amount", "business 3: id 'ok' is listed twice"):
        assert expected in message


def test_a_file_that_is_not_toml_or_absent_is_named(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text("[[business]\nid=")
    env = {"CHATPAY_BUSINESSES": str(tmp_path / "b.toml")}
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_businesses(load_settings(env, env_file=Path("/nonexistent")), env)
    with pytest.raises(ConfigError, match="CHATPAY_BUSINESSES: names .* which is not a file"):
        load_settings({"CHATPAY_BUSINESSES": str(tmp_path / "nope.toml")}, env_file=Path("/nonexistent"))


def test_business_list_and_show_mask_secrets(deployment: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in deployment.items():
        monkeypatch.setenv(name, value)
    assert main(["business", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in listed] == ["acme", "bikes"]
    assert main(["business", "show", "acme"]) == 0
    shown = capsys.readouterr().out
    assert "/telegram/acme" in shown and "bot 123456:***" in shown and "1,000 tokens/day" in shown
    everything = json.dumps(listed) + shown
    assert not any(secret in everything for secret in ("AAAA-secret-part", "acme-secret", "BBBB", "bikes-secret"))
    assert main(["business", "show", "nope"]) == 2
    assert "no business 'nope'; this deployment serves acme, bikes" in capsys.readouterr().err


async def test_a_businesss_persona_reaches_the_chat_models_instructions(tmp_path: Path) -> None:
    from chatpay.adapters.memory import ScriptedChatModel
    from chatpay.bootstrap import build
    from chatpay.config import Settings

    model = ScriptedChatModel([{"intent": "chitchat", "confidence": 0.9}, "Howdy, partner!"] * 3)
    runtime = build(Settings(persona="a cheerful cowboy who says howdy"), llm=model)
    await runtime.start()
    await runtime.service.handle(runtime.turn("hello there, how are you today?"))
    systems = [m.content for request in model.requests for m in request.messages if m.role == "system"]
    assert any("a cheerful cowboy who says howdy" in s for s in systems)
    other = ScriptedChatModel([{"intent": "chitchat", "confidence": 0.9}, "Hello!"] * 3)
    plain = build(Settings(), llm=other)
    await plain.start()
    await plain.service.handle(plain.turn("hello there, how are you today?"))
    assert other.requests and not any("cowboy" in m.content for r in other.requests for m in r.messages)


def test_a_token_that_is_not_a_bot_token_and_the_global_budget_default(deployment: dict[str, str]) -> None:
    env = {**deployment, "BIKES_BOT_TOKEN": "not-a-token", "CHATPAY_TOKEN_BUDGET": "5000"}
    with pytest.raises(ConfigError, match="BIKES_BOT_TOKEN, which does not hold a bot token"):
        load_businesses(load_settings(env, env_file=Path("/nonexistent")), env)
    env["BIKES_BOT_TOKEN"] = "777:ok"
    businesses = load_businesses(load_settings(env, env_file=Path("/nonexistent")), env)
    assert businesses["bikes"].budget.monthly_tokens == 5000  # no [business.budget]: CHATPAY_TOKEN_BUDGET
    assert businesses["acme"].budget.monthly_tokens is None and businesses["acme"].budget.daily_tokens == 1000
