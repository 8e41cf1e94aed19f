"""Texts that must never reach the database in clear (login codes): kept in Redis until they expire.

The message row holds a redacted body; the worker reads the real one from here at hand-off. If Redis
lost it, the message fails with ``secret_expired`` and the app asks for a new code, which is the
right outcome for a code that should not outlive its short validity anyway.
"""

from __future__ import annotations

import redis


def key(message_id: str) -> str:
    return f"comms:secret-body:{message_id}"


def store(connection: redis.Redis, message_id: str, body: str, ttl: int) -> None:
    connection.set(key(message_id), body.encode(), ex=max(1, int(ttl)))


def load(connection: redis.Redis, message_id: str) -> str | None:
    value = connection.get(key(message_id))
    return value.decode() if value is not None else None
