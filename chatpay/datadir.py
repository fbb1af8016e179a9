"""Where the embedded default keeps its data between processes.

``CHATPAY_DATA_DIR`` when set, else the platform's user data directory for ChatPay
(``platformdirs``: ``~/.local/share/chatpay`` on Linux, ``~/Library/Application Support/chatpay``
on macOS, ``%LOCALAPPDATA%\\chatpay`` on Windows). Only the embedded default (no ``MONGODB_URI``)
uses it; nothing is created until something is stored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV = "CHATPAY_DATA_DIR"


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The data directory (not created here)."""
    given = (os.environ if env is None else env).get(ENV, "").strip()
    if given:
        return Path(given).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("chatpay", appauthor=False))
