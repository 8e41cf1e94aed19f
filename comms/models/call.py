"""Voice notifications: outbound calls that read a text aloud, and their status timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, new_id, utcnow

# Twilio's call statuses, in the order a call moves through them; every final status has rank 5.
CALL_STATUS_RANK = {
    "queued": 1,
    "initiated": 2,
    "ringing": 3,
    "in-progress": 4,
    "completed": 5,
    "busy": 5,
    "no-answer": 5,
    "failed": 5,
    "canceled": 5,
}
CALL_TERMINAL = frozenset(s for s, rank in CALL_STATUS_RANK.items() if rank == 5)


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_app_id_id", "app_id", "id"),
        Index("ix_calls_app_id_to", "app_id", "to"),
        Index("ix_calls_app_id_client_ref", "app_id", "client_ref"),
        Index("ix_calls_status_enqueued_at", "status", "enqueued_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("call"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    to: Mapped[str] = mapped_column(String(20))
    from_: Mapped[str | None] = mapped_column("from", String(40))
    # What is read aloud; a login code's is redacted here and kept in clear only in Redis (secret_bodies).
    text: Mapped[str] = mapped_column(Text)
    template_id: Mapped[str | None] = mapped_column(String(40))
    voice: Mapped[str | None] = mapped_column(String(60))
    language: Mapped[str | None] = mapped_column(String(20))
    repeat: Mapped[int] = mapped_column(Integer, default=1)
    machine_detection: Mapped[str | None] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20), default="notification")
    status: Mapped[str] = mapped_column(String(20), default="queued")
    queue: Mapped[str] = mapped_column(String(20), default="default")
    # The RQ job that carries it; the sweeper re-enqueues when Redis no longer knows that job.
    job_id: Mapped[str | None] = mapped_column(String(80))
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    carrier: Mapped[str | None] = mapped_column(String(40))
    carrier_call_id: Mapped[str | None] = mapped_column(String(100), index=True)
    # Seconds the call lasted once answered (Twilio's CallDuration); 0 for a call nobody took.
    duration: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(60))
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(String(500))
    price: Mapped[str | None] = mapped_column(String(20))
    client_ref: Mapped[str | None] = mapped_column(String(200))
    status_callback: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CallEvent(Base):
    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[str | None] = mapped_column(String(500))
