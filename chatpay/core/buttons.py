"""The button data protocol: one typed codec for every inline button ChatPay sends.

Telegram returns a button's ``callback_data`` (1 to 64 bytes) when it is pressed. ChatPay's
buttons say what to do and to what, as ``<kind>[|<product key>[|<variant id or cart version>]]``:

====  =========================  =====================================
kind  meaning                    arguments
====  =========================  =====================================
a     add one of a product       product key, optional variant id
r     remove a product's line    product key
i     tell me about a product    product key
v     show the cart              none
c     empty the cart (asks)      none
cy    yes, empty it              the cart version the question was for
p     check out                  none
o     show my orders             none
====  =========================  =====================================

:func:`decode` never raises: data from an old reply, another bot or a forger decodes to
``None``, and the turn answers politely instead of crashing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from chatpay.core.catalog import Catalog, Product

Kind = Literal["add", "remove", "info", "view", "clear", "confirm_clear", "pay", "orders"]
MAX_BYTES = 64
_CODES: dict[str, Kind] = {"a": "add", "r": "remove", "i": "info", "v": "view", "c": "clear",
                           "cy": "confirm_clear", "p": "pay", "o": "orders"}
_KINDS = {kind: code for code, kind in _CODES.items()}
INTENT_OF: dict[Kind, str] = {"add": "cart_add", "remove": "cart_remove", "info": "enquiry",
                              "view": "cart_view", "clear": "cart_clear", "confirm_clear": "cart_clear",
                              "pay": "payments", "orders": "payments"}
WITH_PRODUCT = frozenset({"add", "remove", "info"})


@dataclass(frozen=True)
class Action:
    """What a button asks for."""

    kind: Kind
    product: str | None = None  # a product key (see :func:`product_key`)
    variant: str | None = None  # a variant id (add) or a cart version (confirm_clear)

    @property
    def intent(self) -> str:
        return INTENT_OF[self.kind]


def product_key(handle: str) -> str:
    """A short, stable key for a product: the handle, or ``~`` + a hash when it is long or has ``|``."""
    if len(handle.encode()) <= 40 and "|" not in handle and not handle.startswith("~"):
        return handle
    return "~" + hashlib.sha1(handle.encode()).hexdigest()[:12]


def resolve(catalog: Catalog, key: str | None) -> Product | None:
    """The product a key names in ``catalog``, or None."""
    if not key:
        return None
    if not key.startswith("~"):
        return catalog.get(key)
    return next((p for p in catalog if product_key(p.handle) == key), None)


def encode(action: Action) -> str:
    """The callback data for ``action``; an optional variant that does not fit in 64 bytes is dropped."""
    parts = [_KINDS[action.kind]]
    if action.product is not None:
        parts.append(action.product)
    data = "|".join(parts)
    if action.variant is not None and len((data + "|" + action.variant).encode()) <= MAX_BYTES:
        data += "|" + action.variant
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"button data over {MAX_BYTES} bytes: {data[:20]}...")
    return data


def decode(data: str | None) -> Action | None:
    """The action in ``data``, or None when it is not one ChatPay sends."""
    if not data or len(data.encode()) > MAX_BYTES:
        return None
    code, *args = data.split("|")
    kind = _CODES.get(code)
    if kind is None or len(args) > 2 or any(not a for a in args):
        return None
    if kind in WITH_PRODUCT:
        if not args or (kind != "add" and len(args) > 1):
            return None
        return Action(kind, args[0], args[1] if len(args) > 1 else None)
    if kind == "confirm_clear":
        return Action(kind, None, args[0]) if len(args) == 1 and args[0].isdigit() else None
    return Action(kind) if not args else None
