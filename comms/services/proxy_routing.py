"""Bridging through proxy numbers: who an inbound call or text reaches, relaying texts through the
message pipeline, and the interaction log of each bridged call and text."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import sms_encoding
from ..models import Binding, BindingParty, Interaction, Message, MessageEvent, new_id, utcnow
from . import messages, phone

log = logging.getLogger(__name__)

# A call's status only moves forward: initiated → ringing → in-progress → an end.
CALL_RANK = {
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "completed": 3,
    "busy": 3,
    "no-answer": 3,
    "failed": 3,
    "canceled": 3,
}
# <Dial action> reports the dialled leg's outcome as DialCallStatus.
DIAL_STATUSES = {
    "completed": "completed",
    "answered": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
}
RELAY_QUEUE = "default"
# Commit a routed call's interaction row without waiting for its WAL flush (PostgreSQL).
ASYNC_CALL_LOG = True


@dataclass(frozen=True)
class Route:
    """An inbound call or text from ``caller`` to ``proxy_number`` goes to ``callee``."""

    binding_id: str
    app_id: str
    proxy_number: str
    caller: str
    callee: str
    direction: str  # a_to_b | b_to_a
    record: bool


_claims, _bindings, _interactions = BindingParty.__table__, Binding.__table__, Interaction.__table__
# The primary key of binding_parties is (proxy_number, party): this is one index lookup and a join by key.
_ROUTE_COLUMNS = (
    _claims.c.binding_id,
    _claims.c.role,
    _claims.c.other_party,
    _claims.c.expires_at,
    _bindings.c.app_id,
    _bindings.c.record,
)
_ROUTE_JOIN = _claims.join(_bindings, _bindings.c.id == _claims.c.binding_id)
_ROUTE_WHERE = (_claims.c.proxy_number == bindparam("proxy_number"), _claims.c.party == bindparam("caller"))
_LOOKUP = select(*_ROUTE_COLUMNS).select_from(_ROUTE_JOIN).where(*_ROUTE_WHERE)
# The same on PostgreSQL, also switching off, for this transaction only, the wait for the WAL flush at
# commit (set_config(..., is_local => true) is SET LOCAL): the routed call's interaction row is then
# committed without making the caller wait on the disk, and without a round trip of its own.
_LOOKUP_ASYNC_COMMIT = (
    select(*_ROUTE_COLUMNS, func.set_config("synchronous_commit", "off", True).label("async_commit"))
    .select_from(_ROUTE_JOIN)
    .where(*_ROUTE_WHERE)
)
_INSERT_INTERACTION = insert(_interactions)
_BY_INBOUND_SID = select(_interactions.c.id).where(_interactions.c.inbound_sid == bindparam("sid"))


def lookup(
    conn: Connection,
    proxy_number: str,
    caller: str,
    now: datetime | None = None,
    *,
    async_commit: bool = False,
) -> Route | None:
    """The active binding in which ``caller`` is a party on ``proxy_number``: one primary-key lookup.

    None for a stranger, and for a binding past ``expires_at`` even before it is marked expired.
    ``async_commit``: on PostgreSQL, the transaction's commit will not wait for the WAL flush.
    """
    query = _LOOKUP_ASYNC_COMMIT if async_commit and conn.dialect.name == "postgresql" else _LOOKUP
    row = conn.execute(query, {"proxy_number": proxy_number, "caller": caller}).first()
    if row is None or row.expires_at <= (now or utcnow()):
        return None
    return Route(
        binding_id=row.binding_id,
        app_id=row.app_id,
        proxy_number=proxy_number,
        caller=caller,
        callee=row.other_party,
        direction="a_to_b" if row.role == "a" else "b_to_a",
        record=bool(row.record),
    )


def _interaction(route: Route, kind: str, status: str, now: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": new_id("itx"),
        "binding_id": route.binding_id,
        "kind": kind,
        "direction": route.direction,
        "from": route.caller,
        "to": route.callee,
        "proxy_number": route.proxy_number,
        "status": status,
        "duration": None,
        "recording_url": None,
        "inbound_sid": None,
        "outbound_sid": None,
        "message_id": None,
        "created_at": now,
        "answered_at": None,
        "ended_at": None,
        "updated_at": now,
        **extra,
    }


def route_call(
    engine: Engine, call_sid: str | None, caller: str, proxy_number: str, *, now: datetime | None = None
) -> tuple[Route, str] | None:
    """Route an inbound call and log it; returns the route and the interaction id (None: refuse the call).

    A repeated webhook for the same call (same CallSid) finds the interaction logged the first time.
    On a plain connection rather than an ORM session: this is the hot path of every proxied call.
    """
    now = now or utcnow()
    with engine.connect() as conn:
        # The caller waits on this answer: they need not wait for the WAL flush of a log row too. A
        # database crash may lose the last instant's interaction rows; the calls themselves went through.
        route = lookup(conn, proxy_number, caller, now, async_commit=ASYNC_CALL_LOG)
        if route is None:
            return None
        row = _interaction(route, "call", "initiated", now, inbound_sid=call_sid or None)
        try:
            conn.execute(_INSERT_INTERACTION, row)
            conn.commit()
        except IntegrityError:
            conn.rollback()
            found = conn.scalar(_BY_INBOUND_SID, {"sid": call_sid})
            if found is None:
                raise
            return route, found
    return route, row["id"]


def record_call_status(
    session: Session, interaction_id: str | None, params: Mapping[str, str], *, now: datetime | None = None
) -> bool:
    """Apply a call progress callback (<Number statusCallback>, <Dial action> or a recording callback)
    to the interaction; a status never moves backwards, duplicates are harmless. Not committed."""
    if not interaction_id:
        return False
    now = now or utcnow()
    table = Interaction.__table__
    if params.get("DialCallStatus") in DIAL_STATUSES:
        status = DIAL_STATUSES[params["DialCallStatus"]]
    else:
        status = params.get("CallStatus") if params.get("CallStatus") in CALL_RANK else None
    changed = False
    if status is not None:
        lower = [s for s, rank in CALL_RANK.items() if rank < CALL_RANK[status]]
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "in-progress":
            values["answered_at"] = func.coalesce(table.c.answered_at, now)
        if CALL_RANK[status] == 3:
            values["ended_at"] = func.coalesce(table.c.ended_at, now)
        result = session.execute(
            update(table).where(table.c.id == interaction_id, table.c.status.in_(lower)).values(values)
        )
        changed = bool(result.rowcount)
    extra: dict[str, Any] = {}
    duration = params.get("DialCallDuration") or (
        params.get("CallDuration") if params.get("CallStatus") == "completed" else None
    )
    if duration and duration.isdigit():
        extra["duration"] = int(duration)
    if params.get("RecordingUrl"):
        extra["recording_url"] = params["RecordingUrl"][:2000]
    # The dialled leg: DialCallSid in <Dial action>, CallSid in the child leg's own status callbacks.
    outbound = params.get("DialCallSid") or (params.get("CallSid") if params.get("ParentCallSid") else None)
    if outbound:
        extra["outbound_sid"] = outbound[:64]
    if extra:
        result = session.execute(
            update(table).where(table.c.id == interaction_id).values(**extra, updated_at=now)
        )
        changed = changed or bool(result.rowcount)
    return changed


def relay_sms(
    runtime, sender: str, recipient: str, body: str, sid: str | None = None, *, now: datetime | None = None
) -> bool:
    """Relay a text one party sent to a proxy number on to the other party, from the proxy number, as an
    ordinary message (so it gets the pipeline's status, retries and callbacks); log the interaction.

    Returns False when the sender has no active binding on ``recipient`` (not a relay). A repeated
    webhook (same MessageSid) relays nothing more.
    """
    now = now or utcnow()
    try:
        with runtime.db.session() as session:
            conn = session.connection()
            route = lookup(conn, recipient, sender, now)
            if route is None:
                return False
            if sid and conn.scalar(_BY_INBOUND_SID, {"sid": sid}):
                return True
            message_id = _relay_message(conn, route, body, now) if body else None
            conn.execute(
                _INSERT_INTERACTION,
                _interaction(
                    route,
                    "sms",
                    "queued" if message_id else "received",
                    now,
                    inbound_sid=sid or None,
                    message_id=message_id,
                    outbound_sid=message_id,
                ),
            )
    except IntegrityError:
        if sid is None:
            raise
        return True  # the same text's webhook, relayed by a concurrent request
    if message_id:
        messages.dispatch(
            runtime.queues, runtime.db.session, [(RELAY_QUEUE, f"deliver-{message_id}", [message_id])]
        )
    log.info(
        "relayed a text %s → %s via %s", phone.mask(sender), phone.mask(route.callee), route.proxy_number
    )
    return True


def _relay_message(conn: Connection, route: Route, body: str, now: datetime) -> str:
    """Insert the relayed text and its first event, as comms.services.messages.create does.

    Free text regardless of the app's allow_free_text: the words are the party's, not the app's.
    """
    info = sms_encoding.analyze(body)
    message_id = new_id("msg")
    conn.execute(
        insert(Message.__table__),
        {
            "id": message_id,
            "app_id": route.app_id,
            "to": route.callee,
            "from": route.proxy_number,
            "body": body,
            "template_id": None,
            "purpose": "relay",
            "status": "queued",
            "segments": info.segments,
            "encoding": str(info.encoding),
            "client_ref": route.binding_id,
            "status_callback": None,
            "send_at": None,
            "due_at": now,
            "queue": RELAY_QUEUE,
            "job_id": f"deliver-{message_id}",
            "enqueued_at": now,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    conn.execute(
        insert(MessageEvent.__table__),
        {"message_id": message_id, "status": "queued", "at": now, "detail": f"relay via {route.binding_id}"},
    )
    return message_id


def interactions(
    session: Session, binding_id: str, *, limit: int, cursor: str | None
) -> list[dict[str, Any]]:
    """Oldest first; a text shows its relayed message's current status."""
    query = (
        select(Interaction, Message.status.label("message_status"))
        .outerjoin(Message, Message.id == Interaction.message_id)
        .where(Interaction.binding_id == binding_id)
    )
    if cursor:
        query = query.where(Interaction.id > cursor)
    rows = session.execute(query.order_by(Interaction.id).limit(limit + 1)).all()
    result = []
    for interaction, message_status in rows:
        data = {c.key: getattr(interaction, c.key) for c in Interaction.__mapper__.column_attrs}
        if message_status:
            data["status"] = message_status
        result.append(data)
    return result
