"""Per-sender pacing: each sender number has a messages-per-second limit that all workers together
keep (Twilio: 1/s for a US long code, 3/s toll-free, 100/s for a short code)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

# Reserve the sender's next free slot: max(now, next_free); the one after is a 1/mps interval later.
_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, free)
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.ceil((slot + interval - now) * 1000) + 1000)
return tostring(slot)
"""


class Pacer:
    """Hands out send times per sender; callers wait until their slot.

    Args:
        connection: the shared Redis.
        clock: seconds since the epoch (a test may pass a controllable clock).
        sleep: how to wait (a test may record instead of sleeping).
    """

    def __init__(
        self,
        connection: redis.Redis,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.redis = connection
        self.clock = clock
        self.sleep = sleep
        self._reserve = connection.register_script(_RESERVE)

    def reserve(self, carrier: str, sender: str, mps: float) -> float:
        """The time at which this send may go (now, or later when the sender is busy)."""
        return float(self._reserve(keys=[f"comms:pace:{carrier}:{sender}"], args=[self.clock(), 1.0 / mps]))

    def wait(self, carrier: str, sender: str, mps: float) -> float:
        """Wait for this sender's next slot; returns how long that took."""
        delay = self.reserve(carrier, sender, mps) - self.clock()
        if delay > 0:
            self.sleep(delay)
        return max(delay, 0.0)
