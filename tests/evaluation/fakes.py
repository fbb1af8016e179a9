"""A runtime stand-in that answers each text with a prepared outcome, and records what it ran.

It builds real core objects (Turn, Reply, RouteDecision, Cart, Catalog, TurnResult), so the
suites score exactly what they would score from the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatpay.core.cart import Cart, CartLine
from chatpay.core.catalog import Catalog, Product, Variant
from chatpay.core.money import Money
from chatpay.core.retrieval import ProductHit, RetrievalResult
from chatpay.core.routing import RouteDecision
from chatpay.core.service import TurnResult
from chatpay.core.telemetry import Trace
from chatpay.core.turns import CartLineView, CartView, ProductCard, Reply, Turn


def product(handle: str, price: str = "10.00") -> Product:
    return Product(handle, handle.replace("-", " ").title(), f"About {handle}.",
                   (Variant(f"{handle}-v", "Default Title", Money.parse(price, "EUR")),), product_type="Things")


CATALOG = Catalog.of("shop", "EUR", [product("mug", "8.50"), product("kettle", "30.00"), product("tea", "3.00"),
                                     product("cup", "5.00")])


@dataclass
class Outcome:
    """What the fake engine does for one text."""

    intent: str = "enquiry"
    confidence: float = 0.9
    clarify: bool = False
    would_call_model: bool = False
    kind: str | None = None  # None: the enquiry agent did not run
    ranked: tuple[str, ...] = ()
    cart: dict[str, int] = field(default_factory=dict)
    text: str = "ok"
    cards: tuple[str, ...] = ()


class FakeRuntime:
    def __init__(self, outcomes: dict[str, Outcome], catalog: Catalog = CATALOG) -> None:
        self.outcomes = outcomes
        self._catalog = catalog
        self.ran: list[tuple[str, str]] = []
        self.engine_name = "offline"
        self.service = self

    async def catalog(self) -> Catalog:
        return self._catalog

    @property
    def forced(self) -> list[str | None]:
        if not hasattr(self, "_forced"):
            self._forced: list[str | None] = []
        return self._forced

    def turn(self, text: str, *, thread_id: str) -> Turn:
        return Turn("shop", thread_id, f"t{len(self.ran)}", text=text)

    async def handle(self, turn: Turn, *, intent: str | None = None) -> TurnResult:
        self.ran.append((turn.thread_id, turn.text))
        self.forced.append(intent)
        o = self.outcomes.get(turn.text, Outcome())
        retrieval: Any = None
        if o.kind is not None:
            hits = tuple(ProductHit(h, 0.9, 0.9, 0.9) for h in o.ranked if not h.startswith("policy:"))
            from chatpay.core.retrieval import PolicyHit

            policies = tuple(PolicyHit(h.split(":", 1)[1], h, 0.9) for h in o.ranked if h.startswith("policy:"))
            retrieval = RetrievalResult(turn.text, turn.text, o.kind, hits, policies, 0.9)  # type: ignore[arg-type]
        cart = Cart("shop", turn.thread_id, tuple(CartLine(h, f"{h}-v", q) for h, q in o.cart.items()))
        view = None
        if o.cart:
            lines = tuple(CartLineView(h, h.title(), "", q, self._catalog.get(h).price,  # type: ignore[union-attr]
                                       self._catalog.get(h).price * q) for h, q in o.cart.items())  # type: ignore[union-attr]
            view = CartView(lines, cart.subtotal(self._catalog))
        cards = tuple(ProductCard(h, f"Card {h}", Money.parse("1.00", "EUR"), "") for h in o.cards)
        decision = RouteDecision(o.intent, o.confidence, clarify=o.clarify, would_call_model=o.would_call_model)
        return TurnResult(turn=turn, reply=Reply(o.text, cards=cards, cart=view), decision=decision,
                          trace=Trace(turn.turn_id).finish(), cart=cart, catalog=self._catalog, engine="offline",
                          retrieval=retrieval)
