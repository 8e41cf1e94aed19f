"""Apps (the tenants) and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, new_id, utcnow


class App(Base):
    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("app"))
    name: Mapped[str] = mapped_column(String(200))
    status_callback: Mapped[str | None] = mapped_column(String(2000))
    allowed_countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    allow_free_text: Mapped[bool] = mapped_column(Boolean, default=False)
    # Only what the app overrode; comms.services.apps merges it over the defaults.
    verification: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Voice call limits the app overrode (comms.services.apps.VOICE_DEFAULTS); empty on older apps.
    voice: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    # Needed in clear to sign outgoing callbacks (an HMAC key cannot be stored hashed).
    webhook_secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="app")


class ApiKey(Base):
    """An API key: ``ck_<prefix>_<secret>``; only the SHA-256 of the whole key is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    app: Mapped[App] = relationship(back_populates="keys")
