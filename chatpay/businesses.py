"""The businesses one deployment serves: ``CHATPAY_BUSINESSES`` or the one-business shortcut.

``CHATPAY_BUSINESSES`` names a TOML file (docs/configuration.md, "Many businesses")::

    [[business]]
    id = "acme"                      # also the webhook path: /telegram/acme
    name = "Acme Audio"
    catalog = "acme/products.json"   # relative to this file; imported where the store holds none
    store = "acme/store.json"        # optional store profile (name, currency, policies)
    currency = "USD"
    bot_token_env = "ACME_BOT_TOKEN"           # names of the variables that hold the secrets
    webhook_secret_env = "ACME_WEBHOOK_SECRET"
    top_k = 6                        # optional, default TOP_K
    persona = "a friendly hi-fi shop"  # optional
    payments = "sandbox"             # optional, default CHATPAY_PAYMENTS
    retention_days = 30              # optional, default CHATPAY_RETENTION_DAYS

    [business.budget]                # optional; any of the four caps
    daily_tokens = 200000
    monthly_usd = "50.00"

Secrets stay in the environment: the file holds only the names of the variables, and nothing
here puts a secret in a ``repr``, a log line or an error. Without ``CHATPAY_BUSINESSES`` the
single-business variables (``BUSINESS_ID``, ``TELEGRAM_BOT_TOKEN``, ``TELEGRAM_WEBHOOK_SECRET``,
``CHATPAY_TOKEN_BUDGET``) describe the one business, as they always did.

Every problem in the file is reported at once, each naming the file, the business and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from chatpay.config import PAYMENT_NEEDS, Settings
from chatpay.core.errors import ConfigError

SETTING = "CHATPAY_BUSINESSES"
ID_SHAPE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYS = {"id", "name", "catalog", "store", "currency", "bot_token_env", "webhook_secret_env", "top_k", "persona",
         "payments", "retention_days", "budget"}
_BUDGET_KEYS = {"daily_tokens", "monthly_tokens", "daily_usd", "monthly_usd"}


@dataclass(frozen=True)
class Budget:
    """Spending caps of one business; None means no cap. USD amounts are exact."""

    daily_tokens: int | None = None
    monthly_tokens: int | None = None
    daily_usd: Decimal | None = None
    monthly_usd: Decimal | None = None

    @property
    def capped(self) -> bool:
        return any(v is not None for v in (self.daily_tokens, self.monthly_tokens, self.daily_usd, self.monthly_usd))

    def describe(self) -> str:
        parts = [f"{v:,} tokens/{p}" for p, v in (("day", self.daily_tokens), ("month", self.monthly_tokens))
                 if v is not None]
        parts += [f"${v}/{p}" for p, v in (("day", self.daily_usd), ("month", self.monthly_usd)) if v is not None]
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class Business:
    """One business a deployment serves, with its secrets resolved from the environment."""

    id: str
    name: str
    currency: str | None = None
    catalog: Path | None = None
    store: Path | None = None
    bot_token_env: str = "TELEGRAM_BOT_TOKEN"
    webhook_secret_env: str = "TELEGRAM_WEBHOOK_SECRET"
    top_k: int = 6
    persona: str = ""
    payments: str = "sandbox"
    retention_days: int = 30
    budget: Budget = field(default_factory=Budget)
    bot_token: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)

    @property
    def bot_id(self) -> str | None:
        """The bot's public numeric id (the token's part before ':'), safe to show and to key on."""
        if not self.bot_token or ":" not in self.bot_token:
            return None
        return self.bot_token.split(":", 1)[0]

    def masked(self) -> dict[str, Any]:
        """What ``chatpay business show`` prints: every setting, secrets masked."""

        def secret(env: str, value: str | None, shown: str | None = None) -> str:
            if not value:
                return f"{env} (not set)"
            return f"{env} (set{', ' + shown if shown else ''})"

        return {
            "id": self.id, "name": self.name, "currency": self.currency or "from the catalog",
            "catalog": str(self.catalog) if self.catalog else "none (import with `chatpay catalog import`)",
            "store": str(self.store) if self.store else "none",
            "bot token": secret(self.bot_token_env, self.bot_token, f"bot {self.bot_id}:***" if self.bot_id else None),
            "webhook secret": secret(self.webhook_secret_env, self.webhook_secret),
            "webhook path": f"/telegram/{self.id}",
            "top_k": self.top_k, "persona": self.persona or "(default)", "payments": self.payments,
            "retention": f"{self.retention_days} days", "budget": self.budget.describe(),
        }


class Businesses(Mapping[str, Business]):
    """The businesses of one deployment, in the order the file lists them."""

    def __init__(self, businesses: list[Business], *, source: Path | None = None) -> None:
        self._by_id = {b.id: b for b in businesses}
        self.source = source

    def __getitem__(self, business_id: str) -> Business:
        return self._by_id[business_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def many(self) -> bool:
        """True when a ``CHATPAY_BUSINESSES`` file, not the one-business variables, describes them."""
        return self.source is not None

    def unknown(self, business_id: str) -> ConfigError:
        where = f"{SETTING} ({self.source})" if self.source else "BUSINESS_ID"
        return ConfigError(where, f"no business {business_id!r}; this deployment serves {', '.join(self) or 'none'}")


def settings_for(settings: Settings, business: Business) -> Settings:
    """``settings`` as seen by one business: its id, bot, secret, top_k, payments, persona, retention."""
    return replace(settings, business_id=business.id, telegram_bot_token=business.bot_token,
                   telegram_webhook_secret=business.webhook_secret, top_k=business.top_k,
                   payments=business.payments, persona=business.persona, retention_days=business.retention_days,
                   token_budget=business.budget.monthly_tokens if business.budget.monthly_tokens is not None
                   else settings.token_budget if not business.budget.capped else None)


def load_businesses(settings: Settings, environ: Mapping[str, str] | None = None) -> Businesses:
    """The businesses ``settings`` describes; :class:`ConfigError` lists every problem in the file."""
    env = os.environ if environ is None else environ
    if settings.businesses_file is None:
        one = Business(id=settings.business_id, name=settings.business_id, top_k=settings.top_k,
                       payments=settings.payments, retention_days=settings.retention_days, persona=settings.persona,
                       budget=Budget(monthly_tokens=settings.token_budget),
                       bot_token=settings.telegram_bot_token, webhook_secret=settings.telegram_webhook_secret)
        return Businesses([one])
    path = settings.businesses_file
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(SETTING, f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(SETTING, f"{path} is not valid TOML: {exc}") from None
    problems: list[str] = []
    unknown_top = sorted(set(data) - {"business"})
    if unknown_top:
        problems.append(f"unknown table(s) {', '.join(unknown_top)}; businesses are listed as [[business]]")
    entries = data.get("business")
    if not isinstance(entries, list) or not entries:
        problems.append("lists no [[business]]")
        entries = []
    found: list[Business] = []
    for n, entry in enumerate(entries, 1):
        business = _parse(entry, n, path.parent, settings, env, problems)
        if business is not None:
            if business.id in {b.id for b in found}:
                problems.append(f"business {n}: id {business.id!r} is listed twice")
            else:
                found.append(business)
    if problems:
        raise ConfigError(SETTING, f"{path}: " + "; ".join(problems))
    return Businesses(found, source=path)


def _parse(entry: Any, n: int, base: Path, settings: Settings, env: Mapping[str, str],
           problems: list[str]) -> Business | None:
    if not isinstance(entry, dict):
        problems.append(f"business {n} is not a table")
        return None
    label = f"business {n}" + (f" ({entry['id']!r})" if isinstance(entry.get("id"), str) else "")
    before = len(problems)

    def bad(message: str) -> None:
        problems.append(f"{label}: {message}")

    for key in sorted(set(entry) - _KEYS):
        bad(f"unknown key {key!r} (known: {', '.join(sorted(_KEYS))})")
    business_id = entry.get("id")
    if not isinstance(business_id, str) or not ID_SHAPE.match(business_id):
        bad("id must be 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit")
    name = entry.get("name", business_id)
    if not isinstance(name, str) or not name.strip():
        bad("name must be a non-empty string")

    def path_of(key: str) -> Path | None:
        value = entry.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            bad(f"{key} must be a path")
            return None
        resolved = (base / value).expanduser()
        if not resolved.is_file():
            bad(f"{key} {value!r} is not a file (looked at {resolved})")
        return resolved

    catalog, store = path_of("catalog"), path_of("store")
    currency = entry.get("currency")
    if currency is not None and not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        bad(f"currency must be a three-letter ISO code such as USD, got {currency!r}")
    secrets: dict[str, str | None] = {}
    for key, default in (("bot_token_env", None), ("webhook_secret_env", None)):
        var = entry.get(key, default)
        if not isinstance(var, str) or not _ENV_NAME.match(var):
            bad(f"{key} must name an environment variable, e.g. ACME_BOT_TOKEN")
            continue
        value = (env.get(var) or "").strip() or None
        if value is None:
            bad(f"{key} names {var}, which is not set")
        elif key == "bot_token_env" and not re.fullmatch(r"\d+:\S+", value):
            bad(f"{key} names {var}, which does not hold a bot token (BotFather's '<bot id>:<secret>')")
        secrets[key] = value
    top_k = entry.get("top_k", settings.top_k)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= 50:
        bad(f"top_k must be a whole number from 1 to 50, got {top_k!r}")
    payments = entry.get("payments", settings.payments)
    if payments not in PAYMENT_NEEDS:
        bad(f"payments {payments!r} is not a provider; choose one of {', '.join(PAYMENT_NEEDS)}")
    persona = entry.get("persona", "")
    if not isinstance(persona, str):
        bad("persona must be a string")
    retention = entry.get("retention_days", settings.retention_days)
    if not isinstance(retention, int) or isinstance(retention, bool) or retention < 1:
        bad(f"retention_days must be a whole number of days, at least 1, got {retention!r}")
    budget = _budget(entry.get("budget"), bad)
    if not budget.capped and settings.token_budget is not None:  # CHATPAY_TOKEN_BUDGET: every business's default
        budget = Budget(monthly_tokens=settings.token_budget)
    if len(problems) > before or not isinstance(business_id, str) or not isinstance(name, str):
        return None
    return Business(id=business_id, name=name.strip(), currency=currency, catalog=catalog, store=store,
                    bot_token_env=entry["bot_token_env"], webhook_secret_env=entry["webhook_secret_env"],
                    top_k=top_k, persona=persona, payments=payments, retention_days=retention, budget=budget,
                    bot_token=secrets.get("bot_token_env"), webhook_secret=secrets.get("webhook_secret_env"))


def _budget(raw: Any, bad: Any) -> Budget:
    if raw is None:
        return Budget()
    if not isinstance(raw, dict):
        bad("budget must be a table: [business.budget]")
        return Budget()
    for key in sorted(set(raw) - _BUDGET_KEYS):
        bad(f"budget has an unknown key {key!r} (known: {', '.join(sorted(_BUDGET_KEYS))})")
    values: dict[str, Any] = {}
    for key in ("daily_tokens", "monthly_tokens"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            bad(f"budget.{key} must be a whole number of tokens, at least 1, got {value!r}")
            continue
        values[key] = value
    for key in ("daily_usd", "monthly_usd"):
        value = raw.get(key)
        if value is None:
            values[key] = None
            continue
        try:  # a string keeps the amount exact; a TOML float is read through its shortest text
            amount = Decimal(value if isinstance(value, str) else repr(value))
        except (InvalidOperation, TypeError):
            amount = Decimal(-1)
        if isinstance(value, bool) or not amount.is_finite() or amount <= 0:
            bad(f"budget.{key} must be a positive amount in USD such as \"25.00\", got {value!r}")
            continue
        values[key] = amount
    return Budget(**values)
