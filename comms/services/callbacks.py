"""Status callbacks to the customer's URL: payload, signature, and planning them after a change."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import CALL_TERMINAL, App
from .status import Change

SIGNATURE_HEADER = "Comms-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex hmac_sha256(secret, "<t>.<body>")>``, as Stripe does, so replays can be refused."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """Check a ``Comms-Signature`` header; what a receiving app would do (and what our tests do)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - t) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, t), header)


def _error_fields(record: dict[str, Any], failed: bool) -> dict[str, Any]:
    return {k: record.get(k) if failed else None for k in ("error", "error_code", "error_message")}


def message_payload(change: Change) -> dict[str, Any]:
    m = change.record
    return {
        "type": "message.status",
        "id": m["id"],
        "status": change.status,
        "to": m["to"],
        "client_ref": m.get("client_ref"),
        "carrier": m.get("carrier"),
        "carrier_message_id": m.get("carrier_message_id"),
        **_error_fields(m, change.status in {"failed", "undelivered"}),
        "at": _timestamp(change.at),
    }


def call_payload(change: Change) -> dict[str, Any]:
    c = change.record
    return {
        "type": "call.status",
        "id": c["id"],
        "status": change.status,
        "to": c["to"],
        "duration": c.get("duration") if change.status in CALL_TERMINAL else None,
        "client_ref": c.get("client_ref"),
        "carrier": c.get("carrier"),
        "carrier_call_id": c.get("carrier_call_id"),
        **_error_fields(c, change.status in CALL_TERMINAL - {"completed"}),
        "at": _timestamp(change.at),
    }


PAYLOADS = {"message": message_payload, "call": call_payload}


def _timestamp(at) -> str:
    return at.isoformat().replace("+00:00", "Z")


def plan(session: Session, changes: Iterable[Change]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(app_id, url, payload)`` for each change whose message, call or app has a status callback."""
    changes = list(changes)
    if not changes:
        return []
    app_ids = {c.record["app_id"] for c in changes if not c.record.get("status_callback")}
    defaults: dict[str, str | None] = {}
    if app_ids:
        defaults = {
            row.id: row.status_callback
            for row in session.execute(select(App.id, App.status_callback).where(App.id.in_(app_ids)))
        }
    planned = []
    for change in changes:
        url = change.record.get("status_callback") or defaults.get(change.record["app_id"])
        if url:
            planned.append((change.record["app_id"], url, PAYLOADS[change.kind](change)))
    return planned


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
