"""Carrier health shared by all workers: a carrier failing transiently N times in a row is skipped
for a cool-down, so traffic moves to the next route (a circuit breaker kept in Redis)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

log = logging.getLogger(__name__)


class CarrierHealth:
    """Args:
    connection: the shared Redis.
    threshold: consecutive transient failures that open the circuit.
    cooldown: seconds a tripped carrier is skipped before it is tried again.
    """

    def __init__(self, connection: redis.Redis, threshold: int = 5, cooldown: float = 30.0):
        if threshold < 1 or cooldown <= 0:
            raise ValueError("threshold must be >= 1 and cooldown > 0")
        self.redis = connection
        self.threshold = threshold
        self.cooldown = cooldown

    @staticmethod
    def _down_key(name: str) -> str:
        return f"comms:carrier:{name}:down"

    @staticmethod
    def _failures_key(name: str) -> str:
        return f"comms:carrier:{name}:failures"

    def down(self, names: Iterable[str]) -> set[str]:
        """Which of ``names`` are in their cool-down now (one round trip)."""
        names = list(names)
        if not names:
            return set()
        flags = self.redis.mget([self._down_key(n) for n in names])
        return {n for n, flag in zip(names, flags, strict=True) if flag}

    def failed(self, name: str) -> bool:
        """Count a transient failure; returns True when this one tripped the circuit."""
        key = self._failures_key(name)
        with self.redis.pipeline() as pipe:
            count, _ = pipe.incr(key).expire(key, int(self.cooldown * 10) + 60).execute()
        if count >= self.threshold:
            with self.redis.pipeline() as pipe:
                pipe.set(self._down_key(name), "1", px=int(self.cooldown * 1000)).delete(key).execute()
            log.warning("carrier %s failed %d times in a row: skipped for %.0fs", name, count, self.cooldown)
            return True
        return False

    def succeeded(self, names: Iterable[str]) -> None:
        """Reset the failure runs of carriers that just took a message."""
        keys = [self._failures_key(n) for n in set(names)]
        if keys:
            self.redis.delete(*keys)

    def status(self, names: Iterable[str]) -> dict[str, dict]:
        names = list(names)
        down = self.down(names)
        failures = self.redis.mget([self._failures_key(n) for n in names]) if names else []
        return {
            n: {"healthy": n not in down, "consecutive_failures": int(f or 0)}
            for n, f in zip(names, failures, strict=True)
        }
