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

from ..models import App
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


def message_payload(change: Change) -> dict[str, Any]:
    m = change.message
    return {
        "type": "message.status",
        "id": m["id"],
        "status": change.status,
        "to": m["to"],
        "client_ref": m.get("client_ref"),
        "carrier": m.get("carrier"),
        "carrier_message_id": m.get("carrier_message_id"),
        "error": m.get("error") if change.status in {"failed", "undelivered"} else None,
        "error_code": m.get("error_code") if change.status in {"failed", "undelivered"} else None,
        "error_message": m.get("error_message") if change.status in {"failed", "undelivered"} else None,
        "at": change.at.isoformat().replace("+00:00", "Z"),
    }


def plan(session: Session, changes: Iterable[Change]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(app_id, url, payload)`` for each change whose message or app has a status callback."""
    changes = list(changes)
    if not changes:
        return []
    app_ids = {c.message["app_id"] for c in changes if not c.message.get("status_callback")}
    defaults: dict[str, str | None] = {}
    if app_ids:
        defaults = {
            row.id: row.status_callback
            for row in session.execute(select(App.id, App.status_callback).where(App.id.in_(app_ids)))
        }
    planned = []
    for change in changes:
        url = change.message.get("status_callback") or defaults.get(change.message["app_id"])
        if url:
            planned.append((change.message["app_id"], url, message_payload(change)))
    return planned


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
