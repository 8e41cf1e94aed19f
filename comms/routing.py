"""Which carriers may carry a message to a number, in order of preference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .carriers.base import Carrier


class Router:
    """Routes by the longest matching number prefix (``+44``, ``+1415`` or "" for any), then priority.

    Args:
        routes: ``{prefix, carrier, priority}`` entries from the configuration; lower priority goes first.
        carriers: the built adapters by name.
    """

    def __init__(self, routes: Sequence[Mapping[str, Any]], carriers: Mapping[str, Carrier]):
        for route in routes:
            if route["carrier"] not in carriers:
                raise ValueError(f"route {route!r} names an unconfigured carrier")
        self._routes = sorted(
            (
                {
                    "prefix": str(r.get("prefix", "")).lstrip("+"),
                    "carrier": r["carrier"],
                    "priority": int(r.get("priority", 1)),
                }
                for r in routes
            ),
            key=lambda r: (-len(r["prefix"]), r["priority"]),
        )
        self.carriers = carriers
        self._key_length = max((len(r["prefix"]) for r in self._routes), default=0)
        self._cache: dict[str, list[Carrier]] = {}

    def candidates(self, number: str) -> list[Carrier]:
        """Carriers for an E.164 number: every route of the longest matching prefix, by priority,
        then shorter prefixes as fallbacks. Cached by the longest prefix any route uses."""
        digits = number.lstrip("+")
        key = digits[: self._key_length]
        if key not in self._cache:
            chosen: list[Carrier] = []
            for route in self._routes:
                if digits.startswith(route["prefix"]):
                    carrier = self.carriers[route["carrier"]]
                    if carrier not in chosen:
                        chosen.append(carrier)
            self._cache[key] = chosen
        return self._cache[key]
