"""Apps, their API keys and settings: creation, authentication and updates."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..models import ApiKey, App, utcnow

KEY_PREFIX = "ck"

VERIFICATION_DEFAULTS: dict[str, Any] = {
    "code_length": 6,
    "code_ttl": 600,
    "max_checks": 5,
    "max_sends": 5,
    "send_window": 600,
    "min_resend_interval": 30,
    # Sends per end-user IP (the request's client_ip; IPv6 counted per /64) per hour; 0: no cap.
    "max_sends_per_ip_per_hour": 20,
    # Sends per destination country per rolling 24 hours; 0: no cap.
    "max_sends_per_country_per_day": 10000,
    # Countries codes may go to, on top of the app's allowed_countries; empty: no further limit.
    "allowed_countries": [],
    # Fraud guard: pause a country for fraud_guard_pause seconds when, over the last hour, at least
    # fraud_guard_min_sends codes went there and conversion (approved ÷ sent) fell below the minimum.
    "fraud_guard": True,
    "fraud_guard_min_sends": 30,
    "fraud_guard_min_conversion": 0.2,
    "fraud_guard_pause": 12 * 3600,
}

# Calls to one number, per app, as Alibaba Cloud's Voice Messaging caps them by default; 0: no cap.
VOICE_DEFAULTS: dict[str, int] = {
    "max_calls_per_minute": 1,
    "max_calls_per_hour": 5,
    "max_calls_per_day": 20,
}


@dataclass(frozen=True)
class Caller:
    """Who is calling: the app a key belongs to, and whether the key is an admin key."""

    app: App
    key_id: str
    is_admin: bool


def hash_key(key: str) -> str:
    # API keys carry 256 random bits, so a fast hash is as safe as a slow one here (no dictionary to try).
    return hashlib.sha256(key.encode()).hexdigest()


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_app(session: Session, name: str, *, admin: bool = False) -> tuple[App, str]:
    """Create an app and its first key; the key is returned once and stored only as a hash."""
    app = App(name=name, webhook_secret=new_webhook_secret(), allowed_countries=[], verification={}, voice={})
    session.add(app)
    session.flush()
    return app, issue_key(session, app, admin=admin)


def issue_key(session: Session, app: App, *, admin: bool = False) -> str:
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(app_id=app.id, prefix=prefix, key_hash=hash_key(key), is_admin=admin))
    return key


def rotate_key(session: Session, app: App) -> str:
    """Revoke every key of the app and issue a new one with the same admin right."""
    keys = session.scalars(select(ApiKey).where(ApiKey.app_id == app.id, ApiKey.revoked_at.is_(None))).all()
    admin = any(k.is_admin for k in keys)
    for key in keys:
        key.revoked_at = utcnow()
    return issue_key(session, app, admin=admin)


def authenticate(session: Session, key: str) -> Caller | None:
    row = session.execute(
        select(ApiKey.id, ApiKey.is_admin, App)
        .join(App, App.id == ApiKey.app_id)
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    return Caller(app=row.App, key_id=row.id, is_admin=row.is_admin)


def get_app(session: Session, app_id: str) -> App:
    app = session.get(App, app_id)
    if app is None:
        raise NotFound("No such app.")
    return app


def verification_settings(app: App) -> dict[str, Any]:
    return {**VERIFICATION_DEFAULTS, **(app.verification or {})}


def voice_settings(app: App) -> dict[str, int]:
    return {**VOICE_DEFAULTS, **(app.voice or {})}


def update_app(app: App, changes: Mapping[str, Any]) -> App:
    """Apply already-validated settings; ``verification`` merges key by key."""
    for field in ("name", "status_callback", "allow_free_text"):
        if field in changes:
            setattr(app, field, changes[field])
    if "allowed_countries" in changes:
        app.allowed_countries = sorted({c.upper() for c in changes["allowed_countries"]})
    if "verification" in changes:
        app.verification = {**(app.verification or {}), **changes["verification"]}
    if "voice" in changes:
        app.voice = {**(app.voice or {}), **changes["voice"]}
    return app
