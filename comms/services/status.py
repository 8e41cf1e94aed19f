"""Status changes of messages and calls: forward only, each recorded once on the timeline, in bulk.

Every source of news about a message or call (the worker's hand-off, a carrier webhook, the sandbox's
reports) goes through :func:`apply`, so the rules hold everywhere: a status never moves backwards
(a late ``sent`` after ``delivered`` is kept as an event only), a duplicate report changes nothing,
and each real change is returned for the customer's status callback. A :class:`Track` says which
tables and which ranks the rules apply to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..models import (
    CALL_STATUS_RANK,
    STATUS_RANK,
    Call,
    CallEvent,
    Message,
    MessageEvent,
    utcnow,
)


@dataclass(frozen=True)
class Track:
    """One kind of record whose status moves forward: its table, its timeline and its ranks.

    Attributes:
        kind: ``message`` or ``call`` (what callbacks and reports call it).
        table, events: the record's table and its timeline table.
        key: the timeline's column naming the record.
        rank: status → rank; a status moves only to a higher rank; the highest rank is final.
        updatable: columns a transition may set besides ``status``.
        identifiers: what the carrier said about the record, kept even from late news.
        carrier_id: the column holding the carrier's id for the record.
        waiting: statuses in which the record waits for a worker to hand it over.
    """

    kind: str
    table: Table
    events: Table
    key: str
    rank: Mapping[str, int]
    updatable: tuple[str, ...]
    identifiers: tuple[str, ...]
    carrier_id: str
    waiting: tuple[str, ...]

    @property
    def terminal(self) -> frozenset[str]:
        top = max(self.rank.values())
        return frozenset(s for s, r in self.rank.items() if r == top)


_DELIVERY_FIELDS = ("carrier", "price", "error", "error_code", "error_message", "claimed_at", "attempts")

MESSAGES = Track(
    kind="message",
    table=Message.__table__,
    events=MessageEvent.__table__,
    key="message_id",
    rank=STATUS_RANK,
    updatable=("carrier_message_id", *_DELIVERY_FIELDS),
    identifiers=("carrier", "carrier_message_id", "price"),
    carrier_id="carrier_message_id",
    waiting=("queued", "sending"),
)
CALLS = Track(
    kind="call",
    table=Call.__table__,
    events=CallEvent.__table__,
    key="call_id",
    rank=CALL_STATUS_RANK,
    updatable=("carrier_call_id", "duration", *_DELIVERY_FIELDS),
    identifiers=("carrier", "carrier_call_id", "price", "duration"),
    carrier_id="carrier_call_id",
    waiting=("queued",),
)
TRACKS = {t.kind: t for t in (MESSAGES, CALLS)}


@dataclass(frozen=True)
class Transition:
    record_id: str
    status: str
    detail: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    # The worker's own attempts may repeat a status (one ``sending`` event per attempt); a carrier's
    # reports may not: a repeated report is a duplicate.
    repeatable: bool = False


@dataclass(frozen=True)
class Change:
    """A status a message or call really moved to: what the status callback reports."""

    record: dict[str, Any]
    status: str
    at: datetime
    kind: str = "message"


def _moves(track: Track, current: str, t: Transition) -> bool:
    if current in track.terminal:
        return False
    return track.rank[t.status] > track.rank[current] or (t.status == current and t.repeatable)


def apply(session: Session, transitions: Iterable[Transition], track: Track = MESSAGES) -> list[Change]:
    """Apply transitions in three statements, whatever their number; returns the real changes."""
    transitions = list(transitions)
    if not transitions:
        return []
    table, events_table = track.table, track.events
    ids = sorted({t.record_id for t in transitions})
    query = select(table).where(table.c.id.in_(ids))
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = {row.id: dict(row._mapping) for row in session.execute(query)}
    key = events_table.c[track.key]
    seen = {(r, s) for r, s in session.execute(select(key, events_table.c.status).where(key.in_(ids)))}
    now = utcnow()
    events, updates, changes = [], {}, []
    for t in transitions:
        row = rows.get(t.record_id)
        if row is None:
            continue
        at = t.at or now
        if (t.record_id, t.status) in seen and not t.repeatable:
            continue  # a duplicate report: already on the timeline
        seen.add((t.record_id, t.status))
        events.append({track.key: t.record_id, "status": t.status, "at": at, "detail": t.detail})
        values = {k: v for k, v in t.fields.items() if k in track.updatable}
        if _moves(track, row["status"], t):
            if row["status"] != t.status:
                changes.append(Change(record=row, status=t.status, at=at, kind=track.kind))
            row["status"] = t.status
            values["status"] = t.status
        elif t.status in track.terminal or track.rank.get(t.status, 0) < track.rank[row["status"]]:
            # Late news: keep identifiers the carrier gave, never the status or a newer error.
            values = {k: v for k, v in values.items() if k in track.identifiers and not row.get(k)}
        if values:
            row.update(values)
            updates.setdefault(t.record_id, {}).update(values)
    if events:
        session.execute(insert(events_table), events)
    _write_updates(session, table, updates, now)
    return changes


def _write_updates(session: Session, table: Table, updates: dict[str, dict[str, Any]], now: datetime) -> None:
    # Group rows by which columns change, so each group is one executemany UPDATE.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record_id, values in updates.items():
        columns = tuple(sorted(values))
        groups.setdefault(columns, []).append({"b_id": record_id, **{f"b_{k}": v for k, v in values.items()}})
    for columns, params in groups.items():
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({table.c[_column(c)]: bindparam(f"b_{c}") for c in columns} | {table.c.updated_at: now})
        )
        session.connection().execute(stmt, params)


def _column(attr: str) -> str:
    return "from" if attr == "from_" else attr
