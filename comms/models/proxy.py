"""Masked numbers: the deployment's proxy numbers, bindings between two parties, and their interactions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, new_id, utcnow

BINDING_STATUSES = ("active", "released", "expired")


class ProxyNumber(Base):
    """A number of the deployment that bindings are placed on; many bindings share one at once."""

    __tablename__ = "proxy_numbers"
    # Choosing a number reads the least-used ones of a pool in this order.
    __table_args__ = (Index("ix_proxy_numbers_pool_load", "pool", "active_bindings", "number"),)

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(40))
    pool: Mapped[str] = mapped_column(String(60), default="default")
    voice: Mapped[bool] = mapped_column(Boolean, default=True)
    sms: Mapped[bool] = mapped_column(Boolean, default=True)
    # Kept by the statements that start and end bindings (``+ 1`` / ``- n``, never read-modify-write),
    # so "least used first" is an index scan rather than a count over every binding.
    active_bindings: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Binding(Base):
    """Two parties reaching each other through one proxy number until ``expires_at``."""

    __tablename__ = "bindings"
    __table_args__ = (
        Index("ix_bindings_app_id_id", "app_id", "id"),
        Index("ix_bindings_app_id_client_ref", "app_id", "client_ref"),
        Index("ix_bindings_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bnd"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    proxy_number: Mapped[str] = mapped_column(String(20))
    party_a: Mapped[str] = mapped_column(String(20))
    party_b: Mapped[str] = mapped_column(String(20))
    pool: Mapped[str] = mapped_column(String(60))
    record: Mapped[bool] = mapped_column(Boolean, default=False)
    client_ref: Mapped[str | None] = mapped_column(String(200))
    # ``active`` until released or marked expired; an active binding past expires_at is already
    # expired for every lookup (the periodic job only catches the row up).
    status: Mapped[str] = mapped_column(String(20), default="active")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BindingParty(Base):
    """A party's claim on a proxy number: one row per party of each active binding, deleted when it ends.

    The primary key (proxy_number, party) is what keeps a party from holding two active bindings on
    one number, in the database, whatever the number of concurrent writers. It is also the index an
    inbound call or text is routed by (To = proxy_number, From = party → dial other_party).
    """

    __tablename__ = "binding_parties"

    proxy_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    party: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)
    binding_id: Mapped[str] = mapped_column(ForeignKey("bindings.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(1))  # "a" or "b"
    other_party: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Interaction(Base):
    """A call or text bridged through a binding."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_binding_id_id", "binding_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("itx"))
    binding_id: Mapped[str] = mapped_column(ForeignKey("bindings.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # call | sms
    direction: Mapped[str] = mapped_column(String(10))  # a_to_b | b_to_a
    from_: Mapped[str] = mapped_column("from", String(20))
    to: Mapped[str] = mapped_column(String(20))
    proxy_number: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    duration: Mapped[int | None] = mapped_column(Integer)
    recording_url: Mapped[str | None] = mapped_column(String(2000))
    # The carrier's id of the inbound call or text: a repeated webhook finds its interaction by it.
    inbound_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The leg to the other party: Twilio's DialCallSid, or for a text the relayed message.
    outbound_sid: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
