"""Login codes: minted with ``secrets``, stored as a keyed hash, compared in constant time.

The database keeps only ``HMAC-SHA256(k, "<verification id>:<code>")`` where ``k`` is derived from the
deployment's secret key: a stolen database (or backup) gives nothing to brute-force offline without
that key, and the verification id in the message makes every hash unique even for equal codes.

The plaintext lives only in Redis, for as long as the code is valid, so a resend can carry the same
code; if Redis loses it, :func:`load_or_mint` mints a new one and the caller updates the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import datetime

import redis

from ..errors import ServiceUnavailable

_DOMAIN = b"comms/verification-code/v1"


def generate(length: int) -> str:
    """``length`` uniformly random digits (leading zeros kept)."""
    if not 4 <= length <= 10:
        raise ValueError(f"code length must be 4–10, not {length}")
    return f"{secrets.randbelow(10**length):0{length}d}"


def _key(secret_key: str) -> bytes:
    # A key of its own, so this HMAC can never be confused with another use of the secret.
    return hmac.new(secret_key.encode(), _DOMAIN, hashlib.sha256).digest()


def digest(secret_key: str, verification_id: str, code: str) -> str:
    return hmac.new(_key(secret_key), f"{verification_id}:{code}".encode(), hashlib.sha256).hexdigest()


def matches(secret_key: str, verification_id: str, code: str, stored: str) -> bool:
    """Whether ``code`` is the verification's code, in time independent of where they differ."""
    return hmac.compare_digest(digest(secret_key, verification_id, code), stored)


def ttl_until(expires_at: datetime, now: datetime) -> int:
    return max(1, math.ceil((expires_at - now).total_seconds()))


def redis_key(verification_id: str) -> str:
    return f"comms:verify:code:{verification_id}"


def load_or_mint(connection: redis.Redis, verification_id: str, length: int, ttl: int) -> tuple[str, bool]:
    """The pending code, or a new one when Redis no longer has it; returns ``(code, minted)``.

    ``SET NX`` makes concurrent resends agree on one new code instead of each minting its own.
    """
    key = redis_key(verification_id)
    try:
        current = connection.get(key)
        if current is not None:
            return current.decode(), False
        fresh = generate(length)
        if connection.set(key, fresh, ex=ttl, nx=True):
            return fresh, True
        current = connection.get(key)
    except redis.RedisError as exc:
        raise ServiceUnavailable("Codes cannot be read right now; retry shortly.") from exc
    if current is None:  # set and gone again within a moment: treat as lost
        raise ServiceUnavailable("The code store is unstable; retry shortly.")
    return current.decode(), False


def forget(connection: redis.Redis, verification_id: str) -> None:
    """Drop the plaintext once the code can no longer be used; its TTL covers a failure here."""
    try:
        connection.delete(redis_key(verification_id))
    except redis.RedisError:
        pass
