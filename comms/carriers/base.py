"""The carrier port: what every carrier adapter implements, and the types it speaks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


class CarrierError(Exception):
    """A carrier refused or could not take a request.

    Args:
        code: the carrier's own error code (for Twilio, its numeric code as a string).
        message: the carrier's human text, safe to show an operator.
        error: our normalised, stable error id (for example ``invalid_phone_number``).
    """

    def __init__(self, code: str | None, message: str, error: str = "carrier_error"):
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.error = error


class CarrierTransientError(CarrierError):
    """Worth retrying later or on another route: timeouts, 5xx, 429, a carrier outage."""


class CarrierPermanentError(CarrierError):
    """Retrying cannot help this message: invalid number, unsubscribed, blocked content."""


@dataclass(frozen=True)
class OutboundSms:
    """One text to hand to a carrier; ``reference`` is our message id."""

    reference: str
    to: str
    from_: str | None
    body: str
    status_callback: str | None = None
    app_id: str = ""


@dataclass(frozen=True)
class OutboundCall:
    """One call that reads ``text`` aloud ``loop`` times; ``reference`` is our call id."""

    reference: str
    to: str
    from_: str | None
    text: str
    voice: str | None = None
    language: str | None = None
    loop: int = 1
    status_callback: str | None = None
    app_id: str = ""
    # Answering-machine detection (Twilio: ``Enable`` or ``DetectMessageEnd``); None: the carrier's default.
    machine_detection: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What the carrier said when it took a message or call.

    ``status`` is ours (``sent`` for a text the carrier accepted, ``initiated`` for a call).
    """

    carrier_message_id: str
    status: str = "sent"
    price: str | None = None


@dataclass(frozen=True)
class StatusReport:
    """A delivery receipt or call progress report parsed from a carrier webhook."""

    carrier_message_id: str
    status: str
    reference: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    duration: int | None = None
    price: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CarrierContext:
    """What the deployment hands every adapter: shared Redis for short-lived state, our public URL."""

    redis: Any = None
    public_url: str = ""


class Carrier(ABC):
    """A carrier adapter. One instance per configured carrier, shared by threads.

    Subclasses set ``type_name`` (what ``type`` in the configuration selects) and
    ``secret_fields`` (configuration keys masked wherever configuration is shown).
    """

    type_name: ClassVar[str]
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # Calls per second the account may start when the configuration sets no ``cps``; None: unpaced.
    default_cps: ClassVar[float | None] = None

    def __init__(self, name: str, config: Mapping[str, Any], context: CarrierContext | None = None):
        self.name = name
        self.config = dict(config)
        self.context = context or CarrierContext()

    @classmethod
    def enabled(cls) -> bool:
        """False when an optional dependency the adapter needs is missing."""
        return True

    @abstractmethod
    def send_sms(self, sms: OutboundSms) -> SendResult:
        """Hand one text over; raise CarrierTransientError or CarrierPermanentError on failure."""

    def place_call(self, call: OutboundCall) -> SendResult:
        """Start one call that reads text aloud."""
        raise CarrierPermanentError(None, f"carrier {self.name} cannot place calls", "channel_unavailable")

    @property
    def default_sender(self) -> str | None:
        """The sender used when a message names none (configuration ``from``)."""
        return self.config.get("from")

    def sender_mps(self, sender: str | None) -> float | None:
        """Messages per second this sender may send (``senders = {number = mps}``, else ``mps``)."""
        value = (self.config.get("senders") or {}).get(sender, self.config.get("mps"))
        return float(value) if value else None

    def calls_per_second(self) -> float | None:
        """Calls per second this carrier account may start, all workers together (``cps``)."""
        value = self.config.get("cps", self.default_cps)
        return float(value) if value else None

    def poll_reports(self, limit: int = 500) -> list[StatusReport]:
        """Reports that are due, for carriers that report when asked rather than by webhook."""
        return []

    def masked_config(self) -> dict[str, Any]:
        """The configuration with secret values hidden, for logs and API output."""
        return {k: ("********" if k in self.secret_fields and v else v) for k, v in self.config.items()}
