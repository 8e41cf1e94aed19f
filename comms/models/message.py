"""Outbound text messages, their status timeline and the idempotency records of the send endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, new_id, utcnow

# A status may only move to one of higher rank; equal-rank terminal statuses are final.
STATUS_RANK = {
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
}
TERMINAL = frozenset(s for s, rank in STATUS_RANK.items() if rank == 4)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_app_id_id", "app_id", "id"),
        Index("ix_messages_app_id_to", "app_id", "to"),
        Index("ix_messages_app_id_client_ref", "app_id", "client_ref"),
        Index("ix_messages_status_due_at", "status", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msg"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    to: Mapped[str] = mapped_column(String(20))
    from_: Mapped[str | None] = mapped_column("from", String(40))
    body: Mapped[str] = mapped_column(Text)
    template_id: Mapped[str | None] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(20), default="notification")
    status: Mapped[str] = mapped_column(String(20), default="queued")
    segments: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(String(10))
    client_ref: Mapped[str | None] = mapped_column(String(200))
    status_callback: Mapped[str | None] = mapped_column(String(2000))
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the message may go: creation time, or send_at for a scheduled one.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queue: Mapped[str] = mapped_column(String(20), default="default")
    # The RQ job that carries it; the sweeper re-enqueues when Redis no longer knows that job.
    job_id: Mapped[str | None] = mapped_column(String(80))
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    carrier: Mapped[str | None] = mapped_column(String(40))
    carrier_message_id: Mapped[str | None] = mapped_column(String(100), index=True)
    error: Mapped[str | None] = mapped_column(String(60))
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(String(500))
    price: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list[MessageEvent]] = relationship(
        order_by="MessageEvent.id", cascade="all, delete-orphan", lazy="raise"
    )


class MessageEvent(Base):
    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[str | None] = mapped_column(String(500))


class IdempotencyRecord(Base):
    """The first response to an ``Idempotency-Key``, replayed for 24 hours."""

    __tablename__ = "idempotency_records"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
