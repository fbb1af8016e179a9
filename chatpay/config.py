"""Configuration: the one module that reads the environment (and a ``.env`` file).

Nothing here does I/O at import time; call :func:`load_settings`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from chatpay.core.errors import ConfigError
from chatpay.datadir import data_dir

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_QUEUE = "chatpay_queue"
DEFAULT_TELEGRAM_API = "https://api.telegram.org"

# What each payment provider needs to start (docs/payments.md, "Providers").
PAYMENT_NEEDS: dict[str, tuple[str, ...]] = {
    "sandbox": (),
    "telegram": ("TELEGRAM_PROVIDER_TOKEN", "TELEGRAM_BOT_TOKEN"),
    "stars": ("TELEGRAM_BOT_TOKEN",),
    "stripe": ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"),
    "usdc": ("USDC_RECIPIENT", "SOLANA_RPC_URL"),
}
PAYMENT_VARIABLES = ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "STRIPE_SUCCESS_URL",
                     "STRIPE_CANCEL_URL", "USDC_RECIPIENT", "SOLANA_RPC_URL", "USDC_MINT")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def redact_url(url: str | None) -> str | None:
    """``url`` with any password replaced by ``***``, safe for logs and screens."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Settings:
    """Everything ChatPay reads from its environment. Secrets are never in ``repr``."""

    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    model: str = DEFAULT_MODEL
    embedding_model: str = "text-embedding-3-small"
    embeddings: str = "local"
    nlu: str = "legacy"
    mongodb_uri: str | None = field(default=None, repr=False)
    mongodb_db: str = "chatpay"
    redis_url: str | None = field(default=None, repr=False)
    queue: str = DEFAULT_QUEUE
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    telegram_api_base_url: str = DEFAULT_TELEGRAM_API
    business_id: str = "demo"
    top_k: int = 6
    worker_id: str = ""
    token_budget: int | None = None
    payments: str = "sandbox"
    data_dir: Path | None = None  # where the embedded default keeps its data; None: nothing is kept
    telegram_provider_token: str | None = field(default=None, repr=False)
    payment_env: Mapping[str, str] = field(default_factory=dict, repr=False)  # STRIPE_*, USDC_*, SOLANA_*
    redis_cluster: bool = False  # REDIS_CLUSTER=1: every Redis client is a cluster client
    businesses_file: Path | None = None  # CHATPAY_BUSINESSES: the businesses one deployment serves
    retention_days: int = 30  # CHATPAY_RETENTION_DAYS: idle carts and conversations in Redis expire after this
    persona: str = ""  # how the bot introduces the shop (per business in CHATPAY_BUSINESSES)

    @property
    def engine(self) -> str:
        """``offline`` without an API key, else the chat model's name."""
        return self.model if self.openai_api_key else "offline"

    @property
    def embedded_mongo(self) -> bool:
        return not self.mongodb_uri

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    def describe(self) -> dict[str, str]:
        """A secret-free summary for headers, logs and reports."""
        return {
            "business": self.business_id,
            "engine": self.engine,
            "mongo": "embedded (mongomock)" if self.embedded_mongo else str(redact_url(self.mongodb_uri)),
            "redis": "not used (turns run in this process)" if self.embedded_redis else str(redact_url(self.redis_url)),
            "telegram": "configured" if self.telegram_bot_token else "sending disabled",
            "payments": self.payments,
            **({"data": str(self.data_dir)} if self.embedded_mongo and self.data_dir else {}),
        }

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file (``KEY=value`` lines, ``#`` comments, optional quotes)."""
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(environ: Mapping[str, str] | None = None, *, env_file: Path | None = None) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over a ``.env`` file.

    Real environment variables win over the file. Raises :class:`ConfigError` naming
    the variable at fault.
    """
    env: dict[str, str] = {}
    path = env_file if env_file is not None else Path.cwd() / ".env"
    if path.is_file():
        env.update(read_env_file(path))
    env.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    redis_url = get("REDIS_URL")
    if redis_url is None and get("REDIS_HOST"):
        port = _int(env, "REDIS_PORT", 6379)
        redis_url = f"redis://{get('REDIS_HOST')}:{port}/0"
    for name, url in (("MONGODB_URI", get("MONGODB_URI")), ("REDIS_URL", redis_url)):
        if url and "://" not in url:
            raise ConfigError(name, "must be a URI such as scheme://host:port")
    budget = get("CHATPAY_TOKEN_BUDGET")
    embeddings = (get("CHATPAY_EMBEDDINGS") or "local").lower()
    if embeddings not in ("local", "static", "openai"):
        raise ConfigError("CHATPAY_EMBEDDINGS", f"must be 'local', 'static' or 'openai', got {embeddings!r}")
    if embeddings == "openai" and not get("OPENAI_API_KEY"):
        raise ConfigError("CHATPAY_EMBEDDINGS", "'openai' needs OPENAI_API_KEY")
    payments = (get("CHATPAY_PAYMENTS") or "sandbox").lower()
    if payments not in PAYMENT_NEEDS:
        raise ConfigError("CHATPAY_PAYMENTS", f"{payments!r} is not a payment provider; choose one of "
                                              + ", ".join(PAYMENT_NEEDS))
    if get("TELEGRAM_PAYMENT_PROVIDER_TOKEN") and not get("TELEGRAM_PROVIDER_TOKEN"):
        raise ConfigError("TELEGRAM_PAYMENT_PROVIDER_TOKEN", "is not read; the variable is TELEGRAM_PROVIDER_TOKEN")
    missing = [name for name in PAYMENT_NEEDS[payments] if not get(name)]
    if missing:
        raise ConfigError("CHATPAY_PAYMENTS", f"{payments!r} needs {', '.join(missing)}")
    payment_env = {k: v for k in PAYMENT_VARIABLES if (v := get(k))}
    cluster = (get("REDIS_CLUSTER") or "0").lower()
    if cluster not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError("REDIS_CLUSTER", f"must be 1 or 0, got {cluster!r}")
    businesses = get("CHATPAY_BUSINESSES")
    if businesses and not Path(businesses).expanduser().is_file():
        raise ConfigError("CHATPAY_BUSINESSES", f"names {businesses!r}, which is not a file")
    nlu = (get("CHATPAY_NLU") or "legacy").lower()
    if nlu not in ("legacy", "fitted"):
        raise ConfigError("CHATPAY_NLU", f"must be 'legacy' or 'fitted', got {nlu!r}")
    return Settings(
        openai_api_key=get("OPENAI_API_KEY"),
        openai_base_url=get("OPENAI_BASE_URL"),
        model=get("CHATPAY_MODEL") or DEFAULT_MODEL,
        embedding_model=get("CHATPAY_EMBEDDING_MODEL") or "text-embedding-3-small",
        embeddings=embeddings,
        nlu=nlu,
        mongodb_uri=get("MONGODB_URI"),
        mongodb_db=get("MONGODB_DB") or "chatpay",
        redis_url=redis_url,
        queue=get("CHATPAY_QUEUE") or DEFAULT_QUEUE,
        telegram_bot_token=get("TELEGRAM_BOT_TOKEN"),
        telegram_webhook_secret=get("TELEGRAM_WEBHOOK_SECRET"),
        telegram_api_base_url=(get("TELEGRAM_API_BASE_URL") or DEFAULT_TELEGRAM_API).rstrip("/"),
        business_id=get("BUSINESS_ID") or "demo",
        top_k=_int(env, "TOP_K", 6),
        worker_id=get("WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}",
        token_budget=_int(env, "CHATPAY_TOKEN_BUDGET", 0, minimum=0) if budget else None,
        payments=payments,
        data_dir=None if get("MONGODB_URI") else data_dir(env),
        telegram_provider_token=get("TELEGRAM_PROVIDER_TOKEN"),
        payment_env=payment_env,
        redis_cluster=cluster in ("1", "true", "yes"),
        businesses_file=Path(businesses).expanduser() if businesses else None,
        retention_days=_int(env, "CHATPAY_RETENTION_DAYS", 30),
    )
