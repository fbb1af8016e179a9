"""The one ChatPay error tree.

Every error ChatPay raises on purpose derives from :class:`ChatPayError` and carries
the data a caller needs to act on it::

    ChatPayError
    ├── ConfigError                 a setting is missing or malformed (``setting``)
    ├── InvalidInput                bad user-supplied data (``source``, ``item``, ``field``)
    │   └── CatalogError            a catalog file or document is wrong
    ├── MoneyError
    │   └── CurrencyMismatch        two amounts in different currencies met
    ├── CartError
    │   ├── UnknownProduct          no such product (``query``, ``suggestions``)
    │   ├── OutOfStock              the product or variant cannot be sold now
    │   └── QuantityError           a quantity outside 1..MAX_QUANTITY
    ├── ConcurrencyConflict         an optimistic write lost a race (``expected_version``)
    ├── StorageError                the system of record failed or refused (``operation``)
    ├── ModelError                  a chat or embedding model failed
    │   ├── ModelRateLimited        the provider said 429 (``retry_after``)
    │   └── BudgetExceeded          the business spent its token budget
    ├── ChannelError                the chat channel refused or failed
    │   ├── ChannelUnavailable      an outage (5xx, timeouts): back off and keep the update
    │   └── RetryAfter              the channel asked us to wait (``retry_after``)
    └── QueueError                  the queue could not be reached

Adapters translate vendor exceptions into these with ``raise ... from exc``.
"""

from __future__ import annotations


class ChatPayError(Exception):
    """Base of every error ChatPay raises on purpose."""


class ConfigError(ChatPayError):
    """A setting is missing or malformed."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class InvalidInput(ChatPayError):
    """User-supplied data is wrong; the message names where.

    Attributes:
        source: the file or stream the data came from.
        item: the line, index or key of the offending item, if known.
        field: the field at fault, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        item: str | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.item = item
        self.field = field
        self.reason = message
        where = ", ".join(
            part
            for part in (
                source,
                f"item {item}" if item is not None else None,
                f"field '{field}'" if field is not None else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class CatalogError(InvalidInput):
    """A catalog file or document is invalid."""


class MoneyError(ChatPayError):
    """An amount of money is malformed."""


class CurrencyMismatch(MoneyError):
    """Two amounts in different currencies were combined."""

    def __init__(self, left: str, right: str) -> None:
        super().__init__(f"cannot combine {left} with {right}")
        self.left = left
        self.right = right


class CartError(ChatPayError):
    """A cart operation cannot be carried out."""


class UnknownProduct(CartError):
    """No product matches; ``suggestions`` holds close handles."""

    def __init__(self, query: str, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(f"no product matches {query!r}")
        self.query = query
        self.suggestions = suggestions


class OutOfStock(CartError):
    """The product (or the chosen variant) is not available."""

    def __init__(self, handle: str, variant_id: str | None = None) -> None:
        super().__init__(f"{handle} is out of stock")
        self.handle = handle
        self.variant_id = variant_id


class QuantityError(CartError):
    """A quantity outside the allowed range."""

    def __init__(self, quantity: int, maximum: int) -> None:
        super().__init__(f"quantity {quantity} is outside 1..{maximum}")
        self.quantity = quantity
        self.maximum = maximum


class ConcurrencyConflict(ChatPayError):
    """An optimistic write found a newer version than it read."""

    def __init__(self, what: str, expected_version: int) -> None:
        super().__init__(f"{what} changed since version {expected_version}")
        self.what = what
        self.expected_version = expected_version


class DuplicatePayment(ChatPayError):
    """A provider payment id that another order already holds (the same payment delivered again)."""

    def __init__(self, provider: str, payment_id: str) -> None:
        super().__init__(f"{provider} payment {payment_id} is already recorded")
        self.provider = provider
        self.payment_id = payment_id


class PaymentError(ChatPayError):
    """A payment provider refused or failed a request; the message says which and why, never a secret."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class StorageError(ChatPayError):
    """The system of record (MongoDB) failed or refused an operation.

    The message names the operation and the vendor error's class, never a URI or secret.
    """

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation


class ModelError(ChatPayError):
    """A chat or embedding model call failed."""


class ModelRateLimited(ModelError):
    """The model provider rate-limited us."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExceeded(ModelError):
    """The business has spent its token budget; fall back to the offline engine."""

    def __init__(self, business_id: str, spent_tokens: int, budget_tokens: int) -> None:
        super().__init__(f"business {business_id} spent {spent_tokens} of {budget_tokens} tokens")
        self.business_id = business_id
        self.spent_tokens = spent_tokens
        self.budget_tokens = budget_tokens


class ChannelError(ChatPayError):
    """The chat channel refused a request or failed."""


class ChannelUnavailable(ChannelError):
    """The channel could not be reached or kept failing (5xx, timeouts): an outage, not a bad message.

    The worker keeps the update and backs off; dead letters are for poison, never for outages.
    """


class RetryAfter(ChannelError):
    """The channel asked us to wait ``retry_after`` seconds before sending again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class QueueError(ChatPayError):
    """The queue could not be reached."""
