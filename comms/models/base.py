"""Declarative base, UTC timestamps and prefixed, time-ordered ids shared by every model."""

from __future__ import annotations

import base64
import os
import time
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Crockford's base32: ids sort by creation time as plain strings, which keyset pagination relies on.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_TO_SORTABLE = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def new_id(prefix: str) -> str:
    """``prefix_`` + 26 base32 chars of 48 bits of milliseconds and 80 random bits, ULID-style.

    Written by hand rather than pulling a ULID package: it is a few lines and needs the prefix anyway.
    base32 is big-endian, so once its alphabet is mapped to one in ASCII order, ids sort by time.
    """
    raw = int(time.time() * 1000).to_bytes(6, "big") + os.urandom(10)
    return f"{prefix}_{base64.b32encode(raw)[:26].translate(_TO_SORTABLE).decode()}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
