"""Telegram intake: what the webhook checks and cleans before it queues an update.

- Secrets: each business's ``X-Telegram-Bot-Api-Secret-Token`` (:func:`business_secret`), and every
  problem with a deployment's secrets at once (:func:`secret_problems`), naming variables, never values.
- Registering: :func:`set_webhook` (``chatpay set-webhook``) gives Telegram a business's URL,
  secret and :data:`ALLOWED_UPDATES`.
- Cleaning: :func:`clean_update` turns a request body into an update safe to queue (valid Unicode,
  texts at most :data:`MAX_TEXT` characters), or says in a few words why it cannot
  (:class:`NotAnUpdate`, answered 400).

Split from :mod:`chatpay.webhook`, which serves the HTTP endpoint and re-exports these names.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Any

from chatpay.businesses import Business, Businesses, load_businesses, settings_for
from chatpay.config import Settings, load_settings
from chatpay.core.errors import ChatPayError, ConfigError
from chatpay.core.updates import CONFIRMED

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT = 4096  # Telegram's limit on a message's text and a caption's, in characters
EXIT_BAD_INPUT = 2
# The update kinds ChatPay serves (docs/formats.md, "Telegram updates on the queue"); Telegram sends no others.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "pre_checkout_query")
_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_SURROGATE = re.compile("[\ud800-\udfff]")  # after json.loads only lone ones are left: pairs are joined


# ----------------------------------------------------------------------------- secrets


def _secret_problem(secret: str | None) -> str | None:
    if not secret:
        return "is not set; the webhook refuses to accept updates without a secret token"
    if not _SECRET_SHAPE.match(secret):
        return "must be 1-256 characters of A-Z, a-z, 0-9, '_' and '-' (Telegram's rule)"
    return None


def check_secret(settings: Settings) -> str:
    """The one-business webhook secret, or :class:`ConfigError` saying why it cannot be used."""
    return business_secret(Business(id=settings.business_id, name=settings.business_id,
                                    webhook_secret=settings.telegram_webhook_secret))


def business_secret(business: Business) -> str:
    """``business``'s webhook secret, or :class:`ConfigError` naming its variable and what is wrong."""
    problem = _secret_problem(business.webhook_secret)
    if problem is not None:
        raise ConfigError(business.webhook_secret_env, problem)
    assert business.webhook_secret is not None
    return business.webhook_secret


def secret_problems(businesses: Businesses) -> list[str]:
    """Every unusable webhook secret of ``businesses``, and secrets two businesses share.

    A shared secret would let one business's updates be accepted on the other's path, so each
    business needs its own. Each line names variables, never a value.
    """
    problems: list[str] = []
    seen: dict[str, str] = {}
    for business in businesses.values():
        problem = _secret_problem(business.webhook_secret)
        if problem is not None:
            problems.append(f"{business.webhook_secret_env}: {problem}")
        elif business.webhook_secret in seen and seen[business.webhook_secret] != business.webhook_secret_env:
            problems.append(f"{seen[business.webhook_secret]} and {business.webhook_secret_env} hold the same "
                            "secret; each business needs its own")
        elif business.webhook_secret is not None:
            seen.setdefault(business.webhook_secret, business.webhook_secret_env)
    if businesses.many:  # in the file two businesses may name one variable: that is one secret for both
        by_env: dict[str, list[str]] = {}
        for business in businesses.values():
            by_env.setdefault(business.webhook_secret_env, []).append(business.id)
        for env, ids in by_env.items():
            if len(ids) > 1:
                problems.append(f"{env} is the webhook secret of {', '.join(ids)}; each business needs its own")
    return problems


# ----------------------------------------------------------------------------- cleaning updates


class NotAnUpdate(ValueError):
    """The body cannot be queued; the message is the short reason answered with 400."""


def _clean_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: json.loads lets "\ud800" through, UTF-8 cannot hold it
        return _SURROGATE.sub("\ufffd", text)
    return text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {_clean_text(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def clean_update(body: bytes) -> dict[str, Any]:
    """The update in ``body``, safe to queue: valid Unicode throughout, texts at most 4,096 characters.

    Undecodable bytes and lone surrogates (``"\\ud800"`` escapes) become U+FFFD, so every worker
    and store downstream gets text that encodes as UTF-8; ``text`` and ``caption`` of a
    ``message`` or ``edited_message`` are cut to :data:`MAX_TEXT` characters, Telegram's own
    limit, so no shopper can make a turn handle a megabyte of text.

    Raises:
        NotAnUpdate: not JSON ("not JSON"), or not a JSON object ("not a Telegram update").
    """
    try:
        update = json.loads(body.decode("utf-8", "replace"), parse_constant=_no_constant)
        update = _clean(update)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        raise NotAnUpdate("not JSON") from None
    if not isinstance(update, dict) or CONFIRMED in update:  # only ChatPay queues confirmed payments
        raise NotAnUpdate("not a Telegram update")
    for kind in ("message", "edited_message"):
        message = update.get(kind)
        if isinstance(message, dict):
            for field in ("text", "caption"):
                text = message.get(field)
                if isinstance(text, str) and len(text) > MAX_TEXT:
                    message[field] = text[:MAX_TEXT]
    return update


def update_id_of(update: dict[str, Any]) -> int | None:
    """The update's ``update_id`` when it is an integer (logged in place of its text), else None."""
    value = update.get("update_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ----------------------------------------------------------------------------- registering


def _chosen(businesses: Businesses, business: str | None) -> Business:
    if business is not None:
        if business not in businesses:
            raise businesses.unknown(business)
        return businesses[business]
    if len(businesses) > 1:
        raise ConfigError("--business", f"this deployment serves {len(businesses)} businesses "
                                        f"({', '.join(businesses)}); choose one with --business ID")
    return next(iter(businesses.values()))


def set_webhook(url: str, business: str | None = None) -> int:
    """Register a business's webhook URL and secret token with Telegram (``chatpay set-webhook URL``).

    ``business`` (``--business``) picks one of the deployment's businesses; it may be left out
    when there is only one. Its bot token and secret are used. A URL ending in ``/`` with
    ``--business`` (or with ``CHATPAY_BUSINESSES``) becomes ``URL`` + ``telegram/<id>``, the path
    ``chatpay webhook`` serves the business on; otherwise it is registered as given.

    Returns 0 when Telegram accepted it, 2 when a setting is missing or the business is unknown
    or not chosen among several, 1 when Telegram refused.
    """
    try:
        settings = load_settings()
        businesses = load_businesses(settings)
        chosen = _chosen(businesses, business)
        secret = business_secret(chosen)
        if not chosen.bot_token:
            raise ConfigError(chosen.bot_token_env, "is not set")
    except ConfigError as exc:
        print(f"chatpay set-webhook: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if url.endswith("/") and (business is not None or businesses.many):
        url = f"{url}telegram/{chosen.id}"
    from chatpay.adapters.telegram import TelegramChannel

    async def register() -> None:
        async with TelegramChannel.from_settings(settings_for(settings, chosen)) as channel:
            await channel.call("setWebhook", {"url": url, "secret_token": secret,
                                              "allowed_updates": list(ALLOWED_UPDATES)})

    try:
        asyncio.run(register())
    except ChatPayError as exc:
        print(f"chatpay set-webhook: {exc}", file=sys.stderr)
        return 1
    print(f"webhook set: {url} (business {chosen.id}; updates: {', '.join(ALLOWED_UPDATES)})")
    return 0
