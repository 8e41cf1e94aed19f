"""A bounded, thread-safe record of the messages and calls the emulator received."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class Store:
    """Keeps the newest ``limit`` records of one kind, by sid; the oldest fall off.

    Records are plain dicts: the Twilio resource plus private ``_``-prefixed keys (the request
    parameters, the callback URL). Every read and write holds one lock, held only briefly.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._items[record["sid"]] = record
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def update(self, sid: str, **changes: Any) -> dict[str, Any] | None:
        """Apply ``changes`` and return a snapshot, or None when the record has fallen off."""
        with self._lock:
            record = self._items.get(sid)
            if record is None:
                return None
            record.update(changes)
            return dict(record)

    def get(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._items.get(sid)
            return dict(record) if record is not None else None

    def newest(self, to: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` records, newest first, only those sent to ``to`` when given."""
        found: list[dict[str, Any]] = []
        with self._lock:
            for record in reversed(self._items.values()):
                if to is None or record.get("to") == to:
                    found.append(dict(record))
                    if len(found) >= limit:
                        break
        return found

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
