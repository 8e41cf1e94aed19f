"""``Idempotency-Key``: the same key and body replays the first response; another body is a 409."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import IdempotencyKeyReused, ValidationFailed
from ..models import IdempotencyRecord, utcnow

MAX_KEY_LENGTH = 255


def request_hash(endpoint: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


def replay(
    session: Session, app_id: str, key: str, endpoint: str, digest: str, ttl: int
) -> tuple[int, dict[str, Any]] | None:
    """The stored response for this key, or None when the key is new (or expired)."""
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters.", field="Idempotency-Key"
        )
    record = session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.app_id == app_id, IdempotencyRecord.key == key)
    )
    if record is None:
        return None
    if record.created_at < utcnow() - timedelta(seconds=ttl):
        session.delete(record)
        session.flush()
        return None
    if record.request_hash != digest or record.endpoint != endpoint:
        raise IdempotencyKeyReused()
    return record.status_code, record.response


def run(
    session: Session,
    *,
    app_id: str,
    key: str | None,
    endpoint: str,
    body: Any,
    ttl: int,
    produce: Callable[[], tuple[int, dict[str, Any]]],
) -> tuple[int, dict[str, Any], bool]:
    """Produce a response once per key inside the caller's transaction.

    Returns ``(status, body, replayed)``. Two concurrent first requests with one key race on the
    record's primary key; the loser's whole transaction (its message included) rolls back and it
    replays the winner's response instead.
    """
    if not key:
        status, response = produce()
        return status, response, False
    digest = request_hash(endpoint, body)
    stored = replay(session, app_id, key, endpoint, digest, ttl)
    if stored is not None:
        return stored[0], stored[1], True
    status, response = produce()
    session.add(
        IdempotencyRecord(
            app_id=app_id,
            key=key,
            endpoint=endpoint,
            request_hash=digest,
            status_code=status,
            response=response,
        )
    )
    session.flush()
    return status, response, False


def is_conflict(exc: IntegrityError) -> bool:
    return "idempotency_records" in str(exc.orig) or "pk_idempotency_records" in str(exc.orig)


def purge_expired(session: Session, ttl: int) -> int:
    cutoff = utcnow() - timedelta(seconds=ttl)
    return session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)).rowcount
