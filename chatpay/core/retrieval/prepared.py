"""One prepared search index per business, for one catalog version, built once even when turns race."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from chatpay.core.catalog import Catalog


class Prepared(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def size(self) -> int: ...


P = TypeVar("P", bound=Prepared)


class PreparedCache(Generic[P]):
    """Keeps what ``build`` made for each business's current catalog; a new version rebuilds it."""

    def __init__(self, build: Callable[[Catalog], Awaitable[P]]) -> None:
        self._build = build
        self._prepared: dict[str, P] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def version(self, business_id: str) -> int | None:
        p = self._prepared.get(business_id)
        return p.version if p else None

    def put(self, business_id: str, prepared: P) -> None:
        self._prepared[business_id] = prepared

    def _current(self, catalog: Catalog) -> P | None:
        cached = self._prepared.get(catalog.business_id)
        return cached if cached and cached.version == catalog.version and cached.size == len(catalog) else None

    async def get(self, catalog: Catalog) -> P:
        cached = self._current(catalog)
        if cached is not None:
            return cached
        async with self._locks.setdefault(catalog.business_id, asyncio.Lock()):
            cached = self._current(catalog)
            if cached is None:
                cached = self._prepared[catalog.business_id] = await self._build(catalog)
            return cached
