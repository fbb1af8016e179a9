"""Model prices in USD per million tokens, with where and when they were read.

An unknown model's cost is ``None`` ("unknown"), never 0: a bill that silently says
zero is worse than one that says it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

PRICE_SOURCE = "https://openai.com/api/pricing (standard tier, text tokens)"
PRICE_DATE = "2026-11-01"
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    input_per_million: Decimal
    output_per_million: Decimal


PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(Decimal("0.15"), Decimal("0.60")),
    "gpt-4o": Price(Decimal("2.50"), Decimal("10.00")),
    "gpt-4.1": Price(Decimal("2.00"), Decimal("8.00")),
    "gpt-4.1-mini": Price(Decimal("0.40"), Decimal("1.60")),
    "gpt-4.1-nano": Price(Decimal("0.10"), Decimal("0.40")),
    "gpt-5": Price(Decimal("1.25"), Decimal("10.00")),
    "gpt-5-mini": Price(Decimal("0.25"), Decimal("2.00")),
    "gpt-5-nano": Price(Decimal("0.05"), Decimal("0.40")),
    "text-embedding-3-small": Price(Decimal("0.02"), Decimal("0")),
    "text-embedding-3-large": Price(Decimal("0.13"), Decimal("0")),
}


def price_of(model: str) -> Price | None:
    """The price of ``model``; dated snapshots (``gpt-4o-mini-2024-07-18``) use their family's."""
    if model in PRICES:
        return PRICES[model]
    best = None
    for name in PRICES:
        if model.startswith(name + "-") and (best is None or len(name) > len(best)):
            best = name
    return PRICES[best] if best else None


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, *, embedding: bool = False) -> Decimal | None:
    """Exact cost of one call in USD, or ``None`` when the model's price is unknown."""
    if prompt_tokens == 0 and completion_tokens == 0:
        return Decimal(0)
    price = price_of(model)
    if price is None:
        return None
    return (price.input_per_million * prompt_tokens + price.output_per_million * completion_tokens) / MILLION
