"""chatpay/core imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "chatpay" / "core"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_core_imports_only_the_standard_library_and_itself() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    offenders = []
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10, "the walker found no core modules"
    for path in files:
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if module.startswith("chatpay.core") or top in stdlib:
                continue
            offenders.append(f"{path.relative_to(CORE.parent.parent)}:{line} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_the_walker_catches_vendor_and_adapter_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom chatpay.adapters.mongo import mongo_stores\nfrom pymongo import MongoClient\n")
    modules = [m for _, m in imported_modules(bad)]
    assert modules == ["numpy", "chatpay.adapters.mongo", "pymongo"]
