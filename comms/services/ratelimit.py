"""Sliding-window rate limits in Redis: several rules checked together and consumed only if all pass.

Each rule keeps a sorted set of the timestamps (ms) of the events it allowed within its window. One
Lua script prunes, counts and — only when every rule has room — records the event under all of them,
so a request refused by one rule (say the per-IP cap) never uses up another's quota (the number's),
and concurrent requests cannot both take the last slot. A "30 seconds between sends" rule is the same
thing with a limit of 1.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from ..errors import RateLimited, ServiceUnavailable

PREFIX = "comms:rl:"

# KEYS: one sorted set per rule. ARGV: now (ms), a unique member, then per rule: limit, window (ms).
# Returns {0, 0} when allowed (and recorded), else {index of the rule with the longest wait, wait ms}.
_HIT = """
local now = tonumber(ARGV[1])
local worst, worst_wait = 0, 0
for i = 1, #KEYS do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    -- One more fits once the (count - limit + 1)-th oldest entry has left the window.
    local entry = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local wait = tonumber(entry[2]) + window - now
    if wait > worst_wait then worst, worst_wait = i, wait end
  end
end
if worst > 0 then return {worst, worst_wait} end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 + 2 * i]))
end
return {0, 0}
"""


@dataclass(frozen=True)
class Rule:
    """At most ``limit`` events per ``window`` seconds under ``key``; refusal raises ``error``."""

    key: str
    limit: int
    window: float
    error: type[RateLimited] = RateLimited
    message: str | None = None

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError(f"a rule needs limit >= 1 and window > 0, not {self.limit}/{self.window}")


class RateLimiter:
    """Checks and consumes :class:`Rule` sets against one Redis."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection
        self._hit = connection.register_script(_HIT)

    def hit(self, rules: Sequence[Rule], now: float | None = None) -> None:
        """Record one event under every rule, or none of them.

        Raises:
            RateLimited: (the refusing rule's ``error``) with ``retry_after`` in whole seconds; the
                rule reported is the one that frees up last, so one wait satisfies them all.
            ServiceUnavailable: Redis is unreachable; limits that cannot be checked refuse (fail closed).
        """
        if not rules:
            return
        now_ms = int((time.time() if now is None else now) * 1000)
        args: list[int | str] = [now_ms, f"{now_ms}-{secrets.token_hex(6)}"]
        for rule in rules:
            args += [rule.limit, int(rule.window * 1000)]
        try:
            index, wait_ms = self._hit(keys=[PREFIX + r.key for r in rules], args=args)
        except redis.RedisError as exc:
            raise ServiceUnavailable("Rate limits cannot be checked right now; retry shortly.") from exc
        if index:
            rule = rules[int(index) - 1]
            raise rule.error(rule.message, retry_after=max(1, math.ceil(int(wait_ms) / 1000)))

    def reset(self, keys: Sequence[str]) -> None:
        if keys:
            self.connection.delete(*(PREFIX + k for k in keys))
