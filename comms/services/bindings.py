"""Bindings: two parties reaching each other through one proxy number, placed so that neither party has
another active binding on that number (so a call or text from either of them to it is unambiguous).

Correctness under concurrency rests on the database, not on Python (see comms.services.claims): each
party of an active binding holds a claim keyed by (proxy_number, party), which a second binding of the
same party on that number cannot insert, however many binds run at once.

A binding is expired as soon as ``expires_at`` passes: lookups compare the time, and a bind that finds no
free number ends its parties' overdue bindings (whose claims still hold numbers) before it answers
``pool_exhausted``. The periodic :func:`expire_due` catches the rows up.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..errors import (
    BindingNotActive,
    BindingNotFound,
    CommsError,
    PartyConflict,
    SameParty,
    ServiceUnavailable,
    ValidationFailed,
)
from ..models import App, Binding, BindingParty, utcnow
from . import claims, phone

log = logging.getLogger(__name__)

DEFAULT_TTL = 24 * 3600
MAX_TTL = 90 * 24 * 3600
MAX_ROUNDS = 64
# PostgreSQL's deadlock_detected and serialization_failure: the transaction is retried as a whole.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def effective_status(binding: Binding, now: datetime | None = None) -> str:
    """``expired`` as soon as ``expires_at`` passes, whether or not the row was marked yet."""
    if binding.status == "active" and binding.expires_at <= (now or utcnow()):
        return "expired"
    return binding.status


def expiry(data: Mapping[str, Any], now: datetime) -> datetime:
    """``expires_at`` from ``expires_at`` or ``ttl`` (seconds; a day when neither is given)."""
    if data.get("expires_at") is not None:
        at = data["expires_at"]
        if at <= now:
            raise ValidationFailed("expires_at must be in the future.", field="expires_at")
        if at > now + timedelta(seconds=MAX_TTL):
            raise ValidationFailed(f"expires_at may be at most {MAX_TTL} seconds ahead.", field="expires_at")
        return at
    return now + timedelta(seconds=data.get("ttl") or DEFAULT_TTL)


def _party(raw: object, field: str, app: App) -> str:
    number = phone.parse(raw, field=field)
    phone.check_country(number, app.allowed_countries, field=field)
    return number.e164


def create(session: Session, app: App, data: Mapping[str, Any], *, now: datetime | None = None) -> Binding:
    """Choose a number and bind the two parties on it. Commits (overdue bindings in the way are ended
    in a transaction of their own, then the bind is tried again).

    Raises:
        InvalidPhoneNumber, CountryNotAllowed, SameParty, ValidationFailed, PoolExhausted.
    """
    a = _party(data.get("party_a"), "party_a", app)
    b = _party(data.get("party_b"), "party_b", app)
    if a == b:
        raise SameParty(field="party_b")
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    expires_at = expiry(data, clock())
    for _ in range(MAX_ROUNDS):
        try:
            binding = claims.place(session, app.id, a, b, expires_at, data, clock)
            session.commit()
            return binding
        except claims.Overdue as overdue:
            session.rollback()
            end(session, overdue.ids, "expired", now=clock())
            session.commit()
        except CommsError:
            session.rollback()
            raise
        except DBAPIError as exc:
            session.rollback()
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                raise
            log.info("bind retried after %s", getattr(exc.orig, "sqlstate", exc))
    raise ServiceUnavailable("The number pool is too busy right now; retry shortly.")


def end(session: Session, ids: Sequence[str], status: str, *, now: datetime | None = None) -> list[str]:
    """End active bindings as ``released`` or ``expired`` (only those past expiry); returns the ids ended.

    Idempotent and safe concurrently: only the statement that moves a row off ``active`` frees its claims
    and numbers. Not committed.
    """
    if not ids:
        return []
    now = now or utcnow()
    table = Binding.__table__
    where = [table.c.id.in_(list(ids)), table.c.status == "active"]
    values: dict[str, Any] = {"status": status, "updated_at": now, "ended_at": now}
    if status == "expired":
        where.append(table.c.expires_at <= now)
        values["ended_at"] = table.c.expires_at
    rows = session.execute(
        update(table).where(*where).values(values).returning(table.c.id, table.c.proxy_number)
    ).all()
    if not rows:
        return []
    ended = [row.id for row in rows]
    session.execute(delete(BindingParty.__table__).where(BindingParty.__table__.c.binding_id.in_(ended)))
    claims.count(session.connection(), {n: -k for n, k in Counter(row.proxy_number for row in rows).items()})
    return ended


def expire_due(runtime, *, now: datetime | None = None, batch: int = 1000) -> int:
    """Mark bindings past ``expires_at`` expired and free their numbers; returns how many.

    For the worker's periodic sweep; safe in every worker at once (rows are claimed with SKIP LOCKED on
    PostgreSQL, under SQLite's write lock otherwise).
    """
    total = 0
    while True:
        at = now or utcnow()
        with runtime.db.session() as session:
            query = (
                select(Binding.id)
                .where(Binding.status == "active", Binding.expires_at <= at)
                .order_by(Binding.expires_at)
                .limit(batch)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            total += len(end(session, ids, "expired", now=at))
        if len(ids) < batch:
            return total


def get(session: Session, app_id: str | None, binding_id: str, *, lock: bool = False) -> Binding:
    """The binding, within ``app_id`` (None: any app, for admin keys); ``lock`` holds its row."""
    query = select(Binding).where(Binding.id == binding_id)
    if app_id is not None:
        query = query.where(Binding.app_id == app_id)
    if lock:
        query = query.with_for_update()
    found = session.scalar(query.execution_options(populate_existing=True))
    if found is None:
        raise BindingNotFound()
    return found


def list_bindings(
    session: Session, app_id: str, filters: Mapping[str, Any], *, limit: int, cursor: str | None
) -> list[Binding]:
    """Newest first. ``status`` filters by the effective status (an overdue active binding is expired)."""
    query = select(Binding).where(Binding.app_id == app_id)
    now = utcnow()
    wanted = filters.get("status")
    if wanted == "active":
        query = query.where(Binding.status == "active", Binding.expires_at > now)
    elif wanted == "expired":
        query = query.where(
            (Binding.status == "expired") | ((Binding.status == "active") & (Binding.expires_at <= now))
        )
    elif wanted:
        query = query.where(Binding.status == wanted)
    if filters.get("client_ref"):
        query = query.where(Binding.client_ref == filters["client_ref"])
    if filters.get("proxy_number"):
        query = query.where(Binding.proxy_number == phone.parse(filters["proxy_number"], "proxy_number").e164)
    if filters.get("party"):
        party = phone.parse(filters["party"], field="party").e164
        query = query.where((Binding.party_a == party) | (Binding.party_b == party))
    if cursor:
        query = query.where(Binding.id < cursor)
    return list(session.scalars(query.order_by(Binding.id.desc()).limit(limit + 1)))


def release(session: Session, binding: Binding, *, now: datetime | None = None) -> Binding:
    """End the binding early (an overdue one is recorded as expired); harmless when already ended."""
    now = now or utcnow()
    if binding.status == "active":
        end(session, [binding.id], "expired" if binding.expires_at <= now else "released", now=now)
        session.refresh(binding)
    return binding


def modify(
    session: Session, app: App, binding: Binding, changes: Mapping[str, Any], *, now: datetime | None = None
) -> Binding:
    """Extend (or shorten) the expiry, swap a party, or change ``record`` of an active binding.

    The proxy number stays, as the parties know it; a new party must not already hold it in another
    active binding. Not committed; roll back on an error.

    Raises:
        BindingNotActive, InvalidPhoneNumber, CountryNotAllowed, SameParty, ValidationFailed, PartyConflict.
    """
    now = now or utcnow()
    if effective_status(binding, now) != "active":
        raise BindingNotActive()
    a = _party(changes["party_a"], "party_a", app) if changes.get("party_a") else binding.party_a
    b = _party(changes["party_b"], "party_b", app) if changes.get("party_b") else binding.party_b
    if a == b:
        raise SameParty(field="party_b" if changes.get("party_b") else "party_a")
    timed = changes.get("ttl") is not None or changes.get("expires_at") is not None
    expires_at = expiry(changes, now) if timed else binding.expires_at
    if "record" in changes:
        binding.record = bool(changes["record"])
    if (a, b, expires_at) != (binding.party_a, binding.party_b, binding.expires_at):
        newcomers = {a, b} - {binding.party_a, binding.party_b}
        end(session, claims.overdue(session, newcomers, now, binding.proxy_number), "expired", now=now)
        field = "party_a" if a != binding.party_a else "party_b"
        session.execute(delete(BindingParty.__table__).where(BindingParty.binding_id == binding.id))
        binding.party_a, binding.party_b, binding.expires_at = a, b, expires_at
        session.flush()
        row = {c.key: getattr(binding, c.key) for c in Binding.__mapper__.column_attrs}
        if claims.claim(session.connection(), row) < 2:
            raise PartyConflict("That party already has an active binding on this proxy number.", field=field)
    binding.updated_at = now
    session.flush()
    return binding
