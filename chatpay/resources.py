"""Where bundled data lives: the repository's ``fixtures/`` or its copy inside the wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def fixtures_dir() -> Path:
    """The bundled fixtures folder (demo store, second shop, samples)."""
    for candidate in (_PACKAGE / "_fixtures", _PACKAGE.parent / "fixtures"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the bundled fixtures are missing; reinstall chatpay")


def demo_store() -> tuple[Path, Path]:
    """The demo store's catalog file and store profile."""
    base = fixtures_dir() / "demo"
    return base / "products.json", base / "store.json"
