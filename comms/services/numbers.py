"""Proxy numbers: the deployment's pool that bindings are placed on (admin keys manage it)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import NotFound, NumberExists, NumberInUse, UnknownCarrier
from ..models import Binding, ProxyNumber, utcnow
from . import bindings, phone

CAPABILITIES = ("voice", "sms")


def capabilities(number: ProxyNumber) -> list[str]:
    return [name for name in CAPABILITIES if getattr(number, name)]


def add(session: Session, data: Mapping[str, Any], carriers: Collection[str]) -> ProxyNumber:
    """Register a number of a configured carrier in a pool (not yet committed).

    Raises:
        InvalidPhoneNumber, UnknownCarrier, NumberExists.
    """
    e164 = phone.parse(data.get("number"), field="number").e164
    if data["carrier"] not in carriers:
        configured = ", ".join(sorted(carriers))
        raise UnknownCarrier(
            f"No carrier named {data['carrier']!r} is configured (configured: {configured}).", field="carrier"
        )
    wanted = set(data.get("capabilities") or CAPABILITIES)
    number = ProxyNumber(
        number=e164,
        carrier=data["carrier"],
        pool=data.get("pool") or "default",
        voice="voice" in wanted,
        sms="sms" in wanted,
        active_bindings=0,
    )
    try:
        with session.begin_nested():
            session.add(number)
    except IntegrityError:
        raise NumberExists(f"{e164} is already registered.", field="number") from None
    return number


def get(session: Session, raw: str) -> ProxyNumber:
    found = session.get(ProxyNumber, phone.parse(raw, field="number").e164)
    if found is None:
        raise NotFound("No such proxy number.")
    return found


def list_numbers(session: Session, pool: str | None, *, limit: int, cursor: str | None) -> list[ProxyNumber]:
    """Ordered by number; ``cursor`` is the last number of the previous page."""
    query = select(ProxyNumber)
    if pool:
        query = query.where(ProxyNumber.pool == pool)
    if cursor:
        query = query.where(ProxyNumber.number > cursor)
    return list(session.scalars(query.order_by(ProxyNumber.number).limit(limit + 1)))


def remove(session: Session, raw: str, *, release: bool = False) -> None:
    """Delete a number; with ``release`` its active bindings are released first (not yet committed).

    Raises:
        NotFound, NumberInUse: it still carries active bindings and ``release`` was not asked.
    """
    number = get(session, raw)
    now = utcnow()
    active = session.execute(
        select(Binding.id, Binding.expires_at).where(
            Binding.proxy_number == number.number, Binding.status == "active"
        )
    ).all()
    # Bindings past their expiry no longer hold the number, whether or not the periodic job marked them.
    bindings.end(session, [i for i, at in active if at <= now], "expired", now=now)
    if release:
        bindings.end(session, [i for i, at in active if at > now], "released", now=now)
    # Conditional: a binding placed on it meanwhile holds its row (PostgreSQL) or the write lock (SQLite).
    table = ProxyNumber.__table__
    gone = session.execute(
        delete(table).where(table.c.number == number.number, table.c.active_bindings == 0)
    ).rowcount
    if not gone:
        raise NumberInUse()
    session.expunge(number)
