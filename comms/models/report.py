"""Carrier delivery reports received by webhook, kept until a worker applies them in bulk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class CarrierReport(Base):
    """A webhook answers as soon as its report is stored here, so carriers' callbacks cost one insert;
    workers apply what arrived in batches (comms.services.sweeper.pump_reports)."""

    __tablename__ = "carrier_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    carrier: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10), default="message")
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
