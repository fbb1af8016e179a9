"""Exact money: integer minor units and an ISO 4217 currency code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from chatpay.core.errors import CurrencyMismatch, MoneyError

# Minor-unit exponents that differ from the usual 2 (ISO 4217; XTR is Telegram Stars).
_EXPONENTS: dict[str, int] = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3,
    "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0,
    "TND": 3, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "XTR": 0,
}
_SYMBOLS: dict[str, str] = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "XTR": "⭐"}


def exponent(currency: str) -> int:
    """Number of decimal places of ``currency``'s minor unit."""
    return _EXPONENTS.get(currency, 2)


def check_currency(currency: object) -> str:
    """Return ``currency`` upper-cased if it looks like an ISO 4217 code, else raise."""
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise MoneyError(f"currency must be a three-letter ISO 4217 code, got {currency!r}")
    return currency.upper()


@dataclass(frozen=True, order=False)
class Money:
    """An exact amount: ``minor`` units (cents) of ``currency``.

    Arithmetic only combines amounts of one currency; anything else raises
    :class:`CurrencyMismatch`. There is no float anywhere.
    """

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise MoneyError(f"minor units must be an int, got {self.minor!r}")
        object.__setattr__(self, "currency", check_currency(self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, amount: object, currency: str) -> Money:
        """Parse an amount in major units ("12.50", 12, Decimal("12.5")) exactly.

        Floats are accepted only through their shortest decimal repr, so 12.5 is
        12.50 and never 12.4999...; an amount with more decimals than the currency
        has minor units is refused rather than rounded.
        """
        if isinstance(amount, bool) or amount is None:
            raise MoneyError(f"not an amount: {amount!r}")
        try:
            if isinstance(amount, float):
                value = Decimal(repr(amount))
            elif isinstance(amount, (int, Decimal)):
                value = Decimal(amount)
            elif isinstance(amount, str):
                value = Decimal(amount.strip())
            else:
                raise MoneyError(f"not an amount: {amount!r}")
        except InvalidOperation as exc:
            raise MoneyError(f"not a number: {amount!r}") from exc
        if not value.is_finite():
            raise MoneyError(f"not a finite amount: {amount!r}")
        code = check_currency(currency)
        scaled = value.scaleb(exponent(code))
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{amount!r} has more decimals than {code} allows")
        return cls(int(scaled), code)

    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-exponent(self.currency))

    def amount_str(self) -> str:
        """The amount in major units with the currency's decimals, e.g. ``"35.50"``."""
        places = exponent(self.currency)
        quant = Decimal(1).scaleb(-places)
        return str(self.to_decimal().quantize(quant, rounding=ROUND_HALF_EVEN))

    def format(self) -> str:
        """Human form: ``€35.50``, ``$4.00``, ``120 JPY`` style."""
        symbol = _SYMBOLS.get(self.currency)
        sign = "-" if self.minor < 0 else ""
        body = Money(abs(self.minor), self.currency).amount_str()
        return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {self.currency}"

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __mul__(self, factor: int) -> Money:
        if not isinstance(factor, int) or isinstance(factor, bool):
            raise TypeError("money can only be multiplied by an int")
        return Money(self.minor * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __str__(self) -> str:
        return self.format()


def total(amounts: Iterable[Money], currency: str) -> Money:
    """Sum ``amounts``; all must be in ``currency``."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
