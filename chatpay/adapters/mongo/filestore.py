"""The embedded default that remembers: mongomock whose collections are kept in a data directory.

Without ``MONGODB_URI`` ChatPay runs on mongomock, an in-process MongoDB. On its own that dies
with the process, so a catalog imported by one ``chatpay`` command was gone for the next. Here
each collection is loaded at start from ``<data dir>/mongo/<db>/<collection>.json`` (MongoDB
Extended JSON, so dates, decimals and binary vectors come back as they went in) and written back
when it changed: after every turn and import (:meth:`FileBackedDatabase.flush`) and at exit.

Writes are atomic (a temporary file, then ``os.replace``) under a file lock, so a reader never
sees half a collection. It is a store for one developer's machine: two processes writing at
once each keep their own copy and the later flush of a collection wins. Production uses MongoDB.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
from datetime import UTC
from pathlib import Path
from typing import Any

from bson import json_util
from filelock import FileLock

from chatpay.core.errors import StorageError

log = logging.getLogger(__name__)

WRITES = frozenset({
    "insert_one", "insert_many", "replace_one", "update_one", "update_many", "delete_one", "delete_many",
    "find_one_and_update", "find_one_and_replace", "find_one_and_delete", "bulk_write", "drop",
})
JSON_OPTIONS = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)


class _TrackedCollection:
    """A mongomock collection that tells its database when a write may have changed it."""

    def __init__(self, collection: Any, owner: FileBackedDatabase) -> None:
        self._collection = collection
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if name not in WRITES:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            finally:
                self._owner.dirty.add(self._collection.name)

        return write


class FileBackedDatabase:
    """A mongomock database loaded from, and flushed to, ``directory``."""

    def __init__(self, directory: Path, name: str = "chatpay") -> None:
        from chatpay.adapters.mongo import embedded_database  # says what to install when mongomock is absent

        self.directory = directory / "mongo" / name
        self.name = name
        self._db: Any = embedded_database(name)
        self._collections: dict[str, _TrackedCollection] = {}
        self.dirty: set[str] = set()
        self._lock = FileLock(str(directory / "mongo" / f".{name}.lock"), timeout=30)
        self._load()
        atexit.register(self.flush)

    def __getitem__(self, name: str) -> _TrackedCollection:
        found = self._collections.get(name)
        if found is None:
            found = self._collections[name] = _TrackedCollection(self._db[name], self)
        return found

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._db, name)

    def _load(self) -> None:
        if not self.directory.is_dir():
            return
        try:
            with self._lock:
                for path in sorted(self.directory.glob("*.json")):
                    docs = json_util.loads(path.read_text(encoding="utf-8"), json_options=JSON_OPTIONS)
                    if docs:
                        self._db[path.stem].insert_many(docs)
        except (OSError, ValueError) as exc:
            raise StorageError("embedded store load", f"cannot read {self.directory}: {exc}") from exc
        log.debug("embedded store loaded", extra={"path": str(self.directory)})

    def flush(self) -> None:
        """Write every collection changed since the last flush."""
        if not self.dirty:
            return
        changed, self.dirty = sorted(self.dirty), set()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self._lock:
                for name in changed:
                    docs = list(self._db[name].find({}))
                    text = json_util.dumps(docs, json_options=JSON_OPTIONS)
                    fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
                    with os.fdopen(fd, "w", encoding="utf-8") as out:
                        out.write(text)
                    os.replace(tmp, self.directory / f"{name}.json")
        except OSError as exc:
            self.dirty.update(changed)
            raise StorageError("embedded store flush", f"cannot write {self.directory}: {exc}") from exc
