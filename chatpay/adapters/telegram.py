"""The Telegram channel: Bot API calls through python-telegram-bot's ``telegram.Bot``.

:class:`TelegramChannel` satisfies :class:`chatpay.core.ports.Channel`. It sends the
:class:`OutgoingMessage` list a presenter produced, in order, and keeps the promises of
docs/architecture.md ("Telegram rendering facts") and docs/operations.md ("Queue and worker guarantees"):

- HTML that Telegram refuses ("can't parse entities") is sent again as plain text;
- a 429 is honoured: every worker pauses for ``retry_after`` (through the shared rate limiter)
  and the message is sent again, never dropped;
- 5xx answers and network failures are retried with backoff, then raise :class:`ChannelError`;
- before each message the rate limiter is awaited (1 per second per chat, ~30 per second in all).

Errors from ``telegram.error`` are translated into :mod:`chatpay.core.errors`::

    RetryAfter (still flooded after max_flood_waits, or asked to wait over max_retry_after)
    ChannelError (refused: bad request, bot blocked, bad token; or failing after the retries)

A product photo Telegram cannot fetch is sent as its caption in a text message instead, and a
refused album is skipped (the product list that follows it carries the same words).

The token never appears in logs or errors: the request log lines of PTB (and of httpx, where a
caller passes PTB's own request), which carry the URL, are redacted, and so are client errors
that quote it.
"""

from __future__ import annotations

import asyncio
import base64
import html
import logging
import re
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Protocol

from telegram import (
    Bot,
    InputFile,
    InputMedia,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
)
from telegram import error as tg
from telegram.request import BaseRequest
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from chatpay.adapters.telegram_http import AiohttpRequest
from chatpay.config import Settings
from chatpay.core.errors import ChannelError, ChannelUnavailable, ConfigError, RetryAfter
from chatpay.core.ports import OutgoingMessage
from chatpay.core.presenter import UPLOAD

log = logging.getLogger(__name__)

DEFAULT_API = "https://api.telegram.org"
MAX_CALLBACK_ANSWER = 200
_TAGS = re.compile(r"<[^<>]*>")


class RateLimiter(Protocol):
    """What the channel needs from a rate limiter (``RedisRateLimiter`` satisfies it)."""

    async def acquire(self, chat_id: str) -> None: ...

    async def pause(self, seconds: float) -> None: ...


class _RedactTokens(logging.Filter):
    """Replaces bot tokens in log records (httpx and PTB log request URLs, which hold the token)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(t in message for t in self.tokens):
            for token in self.tokens:
                message = message.replace(token, "<token>")
            record.msg, record.args = message, None
        return True


_REDACT = _RedactTokens()
for _name in ("httpx", "telegram.Bot", "telegram.request", "telegram.ext"):  # the loggers that print URLs
    logging.getLogger(_name).addFilter(_REDACT)


def html_to_plain(text: str) -> str:
    """The visible text of Telegram HTML: tags removed, entities decoded."""
    return html.unescape(_TAGS.sub("", text))


def _as_plain(params: Mapping[str, Any]) -> dict[str, Any]:
    plain = {k: v for k, v in params.items() if k != "parse_mode"}
    for key in ("text", "caption"):
        if isinstance(plain.get(key), str):
            plain[key] = html_to_plain(plain[key])
    if isinstance(plain.get("media"), list):
        plain["media"] = [_as_plain(m) if isinstance(m, Mapping) else m for m in plain["media"]]
    return plain


def _uses_html(params: Mapping[str, Any]) -> bool:
    media = params.get("media")
    return params.get("parse_mode") == "HTML" or (
        isinstance(media, list) and any(isinstance(m, Mapping) and m.get("parse_mode") == "HTML" for m in media))


_MEDIA_TYPES: dict[str, type[InputMedia]] = {"photo": InputMediaPhoto, "video": InputMediaVideo,
                                             "document": InputMediaDocument, "audio": InputMediaAudio}
_MEDIA_FIELDS = {"media", "caption", "parse_mode", "has_spoiler", "show_caption_above_media"}


def _bot_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as PTB's generic call needs them: album items as ``InputMedia`` objects.

    PTB serialises dict and list values to JSON itself, except ``media``, which it expects typed.
    """
    out = dict(params)
    photo = out.get("photo")
    if isinstance(photo, Mapping) and UPLOAD in photo:  # bytes to upload (a payment QR code)
        out["photo"] = InputFile(base64.b64decode(str(photo[UPLOAD])), filename="pay.png")
    media = out.get("media")
    if isinstance(media, list):
        items: list[Any] = []
        for item in media:
            if isinstance(item, Mapping) and item.get("type") in _MEDIA_TYPES:
                kwargs = {k: v for k, v in item.items() if k in _MEDIA_FIELDS}
                extra = {k: v for k, v in item.items() if k not in _MEDIA_FIELDS and k != "type"}
                items.append(_MEDIA_TYPES[item["type"]](**kwargs, api_kwargs=extra or None))
            else:
                items.append(item)
        out["media"] = items
    return out


def _retry_after_seconds(exc: tg.RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form will become a timedelta
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramChannel:
    """Sends Bot API calls for one bot token.

    Args:
        token: The bot's token (never logged).
        base_url: The Bot API's base URL (``TELEGRAM_API_BASE_URL``), without ``/bot``.
        rate_limiter: Awaited before each message; told to pause all workers on a 429.
        retry_delays: Seconds to wait before each retry of a 5xx or network failure.
        max_flood_waits: 429s honoured for one message before raising :class:`RetryAfter`.
        max_retry_after: A 429 asking for longer than this raises :class:`RetryAfter` at once, so
            the caller can put the work back instead of holding it.
        request: A PTB request object (tests may pass their own).
        sleep: How to wait (tests may pass a recorder).
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_API,
        rate_limiter: RateLimiter | None = None,
        retry_delays: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
        max_flood_waits: int = 5,
        max_retry_after: float = 120.0,
        request: BaseRequest | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not token:
            raise ChannelError("a bot token is required to send through Telegram")
        base = base_url.rstrip("/")
        _REDACT.tokens.add(token)
        # do_api_request suggests the typed method for known endpoints; the generic call is on purpose.
        warnings.filterwarnings("ignore", message=r"Please use 'Bot\.", category=PTBUserWarning)
        # PTB 22 warns, while building its own RetryAfter, that the int form will become a timedelta.
        warnings.filterwarnings("ignore", message=r".*`retry_after` will be of type", category=PTBDeprecationWarning)
        if request is None:  # aiohttp's pool, not PTB's default httpx one (see chatpay.adapters.telegram_http)
            request = AiohttpRequest()
        self.bot = Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot", request=request)
        self._token = token
        self._limiter = rate_limiter
        self._retry_delays = tuple(retry_delays)
        self._max_flood_waits = max_flood_waits
        self._max_retry_after = max_retry_after
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings, *, rate_limiter: RateLimiter | None = None) -> TelegramChannel:
        """The channel for ``TELEGRAM_BOT_TOKEN`` and ``TELEGRAM_API_BASE_URL``.

        Raises:
            ConfigError: No bot token is configured.
        """
        if not settings.telegram_bot_token:
            raise ConfigError("TELEGRAM_BOT_TOKEN", "is not set, so nothing can be sent to Telegram")
        return cls(settings.telegram_bot_token, base_url=settings.telegram_api_base_url, rate_limiter=rate_limiter)

    async def __aenter__(self) -> TelegramChannel:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.bot.shutdown()

    # ------------------------------------------------------------ the Channel port

    async def send(self, chat_id: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send each message in order, waiting for the rate limiter before each.

        Raises:
            RetryAfter: Telegram kept flooding us (the messages before this one were sent).
            ChannelError: Telegram refused a message, or kept failing after the retries.
        """
        for message in messages:
            params = dict(message.params)
            params.setdefault("chat_id", chat_id)
            await self.call(message.method, params, chat_id=str(params["chat_id"]))

    async def answer_callback(self, callback_query_id: str, text: str | None = None) -> None:
        """Answer a button press (always do: the shopper's client shows a spinner until then).

        A query Telegram already expired is logged and let go: nothing can answer it any more.
        """
        params: dict[str, Any] = {"callback_query_id": callback_query_id}
        if text:
            params["text"] = text[:MAX_CALLBACK_ANSWER]
        try:
            await self.call("answerCallbackQuery", params)
        except ChannelError as exc:
            reason = str(exc).lower()
            if "query is too old" not in reason and "query id is invalid" not in reason:
                raise
            log.warning("callback query expired before it was answered", extra={"error": str(exc)})

    async def send_typing(self, chat_id: str) -> None:
        """Show "typing…" in the chat; best effort, it never raises."""
        try:
            await self.call("sendChatAction", {"chat_id": chat_id, "action": "typing"}, retries=False)
        except ChannelError as exc:
            log.info("typing indicator not sent", extra={"chat_id": chat_id, "error": str(exc)})

    async def answer_pre_checkout(self, query_id: str, ok: bool, error_message: str | None = None) -> None:
        """Accept or refuse a pre-checkout query (Telegram waits 10 seconds at most)."""
        params: dict[str, Any] = {"pre_checkout_query_id": query_id, "ok": ok}
        if not ok:
            params["error_message"] = error_message or "This order can no longer be paid."
        await self.call("answerPreCheckoutQuery", params)

    # ------------------------------------------------------------ one Bot API call

    async def call(self, method: str, params: Mapping[str, Any], *, chat_id: str | None = None,
                   retries: bool = True) -> Any:
        """One Bot API call with the channel's retry rules; returns Telegram's ``result``.

        ``chat_id`` given means the call is a message to that chat and waits for the rate limiter.
        """
        current = dict(params)
        failures = floods = 0
        plain = False
        while True:
            if chat_id is not None and self._limiter is not None:
                await self._limiter.acquire(chat_id)
            try:
                return await self.bot.do_api_request(method, api_kwargs=_bot_params(current))
            except tg.RetryAfter as exc:
                wait = _retry_after_seconds(exc)
                floods += 1
                if self._limiter is not None:
                    await self._limiter.pause(wait)
                if floods > self._max_flood_waits or wait > self._max_retry_after:
                    raise RetryAfter(wait) from exc
                log.warning("Telegram flood control; waiting", extra={"method": method, "retry_after": wait})
                await self._sleep(wait)
            except tg.ChatMigrated as exc:
                # The group became a supergroup: same conversation, new id.
                current["chat_id"] = exc.new_chat_id
                chat_id = None if chat_id is None else str(exc.new_chat_id)
                failures += 1
                if failures > len(self._retry_delays):
                    raise ChannelError(f"{method}: {self._clean(exc)}") from exc
            except tg.BadRequest as exc:
                if not plain and "can't parse entities" in str(exc).lower() and _uses_html(current):
                    log.warning("Telegram refused our HTML; sending plain text", extra={"method": method})
                    current, plain = _as_plain(current), True
                    continue
                if method == "sendPhoto" and str(current.get("caption") or "").strip():
                    # Telegram could not fetch or use the product image; the words still go out.
                    log.warning("photo refused; sending its caption as text", extra={"error": self._clean(exc)})
                    text = {k: v for k, v in current.items() if k not in {"photo", "caption"}}
                    return await self.call("sendMessage", {**text, "text": current["caption"]}, chat_id=chat_id,
                                           retries=retries)
                if method == "sendMediaGroup":
                    # An album only repeats the product list that follows it; losing it loses no words.
                    log.warning("album refused; skipped", extra={"error": self._clean(exc)})
                    return None
                raise ChannelError(f"{method} refused: {self._clean(exc)}") from exc
            except (tg.Forbidden, tg.InvalidToken, tg.Conflict, tg.EndPointNotFound) as exc:
                raise ChannelError(f"{method} refused: {self._clean(exc)}") from exc
            except tg.NetworkError as exc:  # 5xx, timeouts, connection failures
                if not retries or failures >= len(self._retry_delays):
                    raise ChannelUnavailable(f"{method} failed after {failures + 1} tries: {self._clean(exc)}") from exc
                delay = self._retry_delays[failures]
                failures += 1
                log.warning("Bot API call failed; retrying", extra={"method": method, "attempt": failures,
                                                                    "delay": delay, "error": self._clean(exc)})
                await self._sleep(delay)
            except tg.TelegramError as exc:
                raise ChannelError(f"{method}: {self._clean(exc)}") from exc

    def _clean(self, exc: BaseException) -> str:
        return str(exc).replace(self._token, "<token>")
