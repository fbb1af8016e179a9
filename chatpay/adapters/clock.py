"""The wall clock, the :class:`~chatpay.core.ports.Clock` production runs on (UTC, timezone-aware)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """``now()`` is the current time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
