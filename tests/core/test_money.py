"""Money is exact: integer minor units, one currency per sum."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatpay.core.errors import CurrencyMismatch, MoneyError
from chatpay.core.money import Money, total

amounts = st.integers(min_value=-10**12, max_value=10**12)


@given(st.lists(amounts, max_size=50))
def test_summing_never_loses_a_cent(values: list[int]) -> None:
    assert total((Money(v, "EUR") for v in values), "EUR").minor == sum(values)


@given(amounts, st.integers(min_value=0, max_value=10_000))
def test_multiplying_is_exact(minor: int, factor: int) -> None:
    assert (Money(minor, "USD") * factor).minor == minor * factor


@given(st.integers(min_value=0, max_value=10**9))
def test_parse_and_format_round_trip(minor: int) -> None:
    m = Money(minor, "EUR")
    assert Money.parse(m.amount_str(), "EUR") == m


@pytest.mark.parametrize(
    ("raw", "currency", "minor"),
    [("12.50", "EUR", 1250), (12.5, "EUR", 1250), (0.1, "USD", 10), ("1000", "JPY", 1000),
     (Decimal("3.141"), "KWD", 3141), (7, "GBP", 700), (" 4.2 ", "EUR", 420)],
)
def test_parse_reads_major_units_exactly(raw: object, currency: str, minor: int) -> None:
    assert Money.parse(raw, currency).minor == minor


@pytest.mark.parametrize("raw", ["twelve", "", None, True, "1.005", float("nan"), "inf", [1]])
def test_parse_refuses_what_is_not_an_exact_amount(raw: object) -> None:
    with pytest.raises(MoneyError):
        Money.parse(raw, "EUR")


def test_mixing_currencies_is_an_error() -> None:
    with pytest.raises(CurrencyMismatch):
        Money(100, "EUR") + Money(100, "USD")
    with pytest.raises(CurrencyMismatch):
        total([Money(1, "EUR"), Money(1, "GBP")], "EUR")


def test_bad_currency_codes_are_refused() -> None:
    for code in ("EURO", "E1R", "", 5):
        with pytest.raises(MoneyError):
            Money(1, code)  # type: ignore[arg-type]


def test_formatting_uses_symbols_and_decimals() -> None:
    assert Money(3550, "EUR").format() == "€35.50"
    assert Money(-5, "USD").format() == "-$0.05"
    assert Money(1200, "JPY").format() == "¥1200"
    assert Money(1234, "CHF").format() == "12.34 CHF"


def test_floats_are_not_money() -> None:
    with pytest.raises(MoneyError):
        Money(12.5, "EUR")  # type: ignore[arg-type]
