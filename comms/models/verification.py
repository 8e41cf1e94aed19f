"""Verifications (login codes), their send attempts, and fraud-guard pauses of a country for an app."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, new_id, utcnow

VERIFICATION_STATUSES = ("pending", "approved", "canceled", "expired", "max_attempts_reached")


class Verification(Base):
    """One login code for one number. The code itself is never stored: only its keyed hash."""

    __tablename__ = "verifications"
    __table_args__ = (
        Index("ix_verifications_app_id_id", "app_id", "id"),
        Index("ix_verifications_app_id_to", "app_id", "to"),
        # At most one pending verification per app and number, so a concurrent second request cannot
        # mint a second valid code: it loses the insert and becomes a resend of the first.
        Index(
            "ix_verifications_one_pending",
            "app_id",
            "to",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ver"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    to: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    channel: Mapped[str] = mapped_column(String(10))
    locale: Mapped[str] = mapped_column(String(20))
    template_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(30), default="pending")
    # HMAC-SHA256(deployment secret, id + code), hex: useless to anyone without the secret key.
    code_hash: Mapped[str] = mapped_column(String(64))
    code_length: Mapped[int] = mapped_column(Integer)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    max_checks: Mapped[int] = mapped_column(Integer)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    client_ip: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class VerificationSend(Base):
    """One send attempt of a verification's code: the message (or call) that carried it."""

    __tablename__ = "verification_sends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    verification_id: Mapped[str] = mapped_column(
        ForeignKey("verifications.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FraudGuardPause(Base):
    """Codes to ``country`` paused for an app because too few of them were ever used (SMS pumping).

    Active while ``lifted_at`` is empty and ``until`` is in the future; kept afterwards as the record.
    """

    __tablename__ = "fraud_guard_pauses"
    __table_args__ = (Index("ix_fraud_guard_pauses_app_id_country", "app_id", "country"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    country: Mapped[str] = mapped_column(String(2))
    sends: Mapped[int] = mapped_column(Integer)
    approvals: Mapped[int] = mapped_column(Integer)
    conversion: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(40))
