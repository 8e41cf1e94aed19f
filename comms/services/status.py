"""Status changes of messages: forward only, each recorded once on the timeline, in bulk.

Every source of news about a message (the worker's hand-off, a carrier webhook, the sandbox's
reports) goes through :func:`apply`, so the rules hold everywhere: a status never moves backwards
(a late ``sent`` after ``delivered`` is kept as an event only), a duplicate report changes nothing,
and each real change is returned for the customer's status callback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..models import STATUS_RANK, TERMINAL, Message, MessageEvent, utcnow

UPDATABLE_FIELDS = (
    "carrier",
    "carrier_message_id",
    "price",
    "error",
    "error_code",
    "error_message",
    "claimed_at",
    "attempts",
)


@dataclass(frozen=True)
class Transition:
    message_id: str
    status: str
    detail: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    # The worker's own attempts may repeat a status (one ``sending`` event per attempt); a carrier's
    # reports may not: a repeated report is a duplicate.
    repeatable: bool = False


@dataclass(frozen=True)
class Change:
    """A status a message really moved to: what the status callback reports."""

    message: dict[str, Any]
    status: str
    at: datetime


def _moves(current: str, t: Transition) -> bool:
    if current in TERMINAL:
        return False
    return STATUS_RANK[t.status] > STATUS_RANK[current] or (t.status == current and t.repeatable)


def apply(session: Session, transitions: Iterable[Transition]) -> list[Change]:
    """Apply transitions in three statements, whatever their number; returns the real changes."""
    transitions = list(transitions)
    if not transitions:
        return []
    ids = sorted({t.message_id for t in transitions})
    query = select(Message.__table__).where(Message.id.in_(ids))
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = {row.id: dict(row._mapping) for row in session.execute(query)}
    seen = {
        (m, s)
        for m, s in session.execute(
            select(MessageEvent.message_id, MessageEvent.status).where(MessageEvent.message_id.in_(ids))
        )
    }
    now = utcnow()
    events, updates, changes = [], {}, []
    for t in transitions:
        row = rows.get(t.message_id)
        if row is None:
            continue
        at = t.at or now
        if (t.message_id, t.status) in seen and not t.repeatable:
            continue  # a duplicate report: already on the timeline
        seen.add((t.message_id, t.status))
        events.append({"message_id": t.message_id, "status": t.status, "at": at, "detail": t.detail})
        values = {k: v for k, v in t.fields.items() if k in UPDATABLE_FIELDS}
        if _moves(row["status"], t):
            if row["status"] != t.status:
                changes.append(Change(message=row, status=t.status, at=at))
            row["status"] = t.status
            values["status"] = t.status
        elif t.status in TERMINAL or STATUS_RANK.get(t.status, 0) < STATUS_RANK[row["status"]]:
            # Late news: keep identifiers the carrier gave, never the status or a newer error.
            values = {
                k: v
                for k, v in values.items()
                if k in ("carrier", "carrier_message_id", "price") and not row.get(k)
            }
        if values:
            row.update(values)
            updates.setdefault(t.message_id, {}).update(values)
    if events:
        session.execute(insert(MessageEvent), events)
    _write_updates(session, updates, now)
    return changes


def _write_updates(session: Session, updates: dict[str, dict[str, Any]], now: datetime) -> None:
    # Group rows by which columns change, so each group is one executemany UPDATE.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for message_id, values in updates.items():
        columns = tuple(sorted(values))
        groups.setdefault(columns, []).append(
            {"b_id": message_id, **{f"b_{k}": v for k, v in values.items()}}
        )
    table = Message.__table__
    for columns, params in groups.items():
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({table.c[_column(c)]: bindparam(f"b_{c}") for c in columns} | {table.c.updated_at: now})
        )
        session.connection().execute(stmt, params)


def _column(attr: str) -> str:
    return "from" if attr == "from_" else attr
