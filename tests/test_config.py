"""Settings are read in one place, from the environment over a .env file."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatpay.config import load_settings, redact_url
from chatpay.core.errors import ConfigError


def test_nothing_configured_means_the_embedded_default(tmp_path: Path) -> None:
    s = load_settings({}, env_file=tmp_path / "none.env")
    assert (s.engine, s.embedded_mongo, s.embedded_redis, s.business_id, s.top_k) == ("offline", True, True, "demo", 6)
    assert s.queue == "chatpay_queue" and s.telegram_api_base_url == "https://api.telegram.org"


def test_the_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("OPENAI_API_KEY=sk-file\nCHATPAY_MODEL=gpt-4.1-mini\nTOP_K=3\nBUSINESS_ID=from-file\n")
    s = load_settings({"BUSINESS_ID": "from-env"}, env_file=env)
    assert (s.engine, s.top_k, s.business_id) == ("gpt-4.1-mini", 3, "from-env")


def test_redis_host_and_port_make_a_url(tmp_path: Path) -> None:
    s = load_settings({"REDIS_HOST": "cache", "REDIS_PORT": "6380"}, env_file=tmp_path / "x")
    assert s.redis_url == "redis://cache:6380/0"


@pytest.mark.parametrize(
    ("env", "setting"),
    [({"TOP_K": "many"}, "TOP_K"), ({"TOP_K": "0"}, "TOP_K"), ({"MONGODB_URI": "localhost"}, "MONGODB_URI"),
     ({"CHATPAY_EMBEDDINGS": "openai"}, "CHATPAY_EMBEDDINGS"), ({"CHATPAY_EMBEDDINGS": "magic"}, "CHATPAY_EMBEDDINGS")],
)
def test_bad_settings_name_the_variable(env: dict[str, str], setting: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=tmp_path / "x")
    assert caught.value.setting == setting


def test_secrets_never_show(tmp_path: Path) -> None:
    s = load_settings({"OPENAI_API_KEY": "sk-secret", "MONGODB_URI": "mongodb://u:hunter2@db:27017/x",
                       "TELEGRAM_BOT_TOKEN": "123:ABC"}, env_file=tmp_path / "x")
    shown = repr(s) + str(s.describe())
    for secret in ("sk-secret", "hunter2", "123:ABC"):
        assert secret not in shown
    assert redact_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"


def test_a_payment_provider_without_its_settings_refuses_to_start_and_names_them_all() -> None:
    import pytest

    from chatpay.config import load_settings
    from chatpay.core.errors import ConfigError

    assert load_settings(environ={}, env_file=None).payments == "sandbox"  # the sandbox needs no setting
    with pytest.raises(ConfigError, match="CHATPAY_PAYMENTS.*'stripe' needs STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET"):
        load_settings(environ={"CHATPAY_PAYMENTS": "stripe"}, env_file=None)
    with pytest.raises(ConfigError, match="'telegram' needs TELEGRAM_PROVIDER_TOKEN"):
        load_settings(environ={"CHATPAY_PAYMENTS": "telegram", "TELEGRAM_BOT_TOKEN": "1:x"}, env_file=None)
    with pytest.raises(ConfigError, match="TELEGRAM_PAYMENT_PROVIDER_TOKEN.*TELEGRAM_PROVIDER_TOKEN"):
        load_settings(environ={"TELEGRAM_PAYMENT_PROVIDER_TOKEN": "tok"}, env_file=None)
    with pytest.raises(ConfigError, match="'paypal' is not a payment provider"):
        load_settings(environ={"CHATPAY_PAYMENTS": "paypal"}, env_file=None)
    ok = load_settings(environ={"CHATPAY_PAYMENTS": "telegram", "TELEGRAM_BOT_TOKEN": "1:x",
                                "TELEGRAM_PROVIDER_TOKEN": "284685063:TEST:abc"}, env_file=None)
    assert ok.payments == "telegram" and "TEST" not in repr(ok)
