"""SQLAlchemy models; importing this package registers every table on ``Base.metadata``."""

from .app import ApiKey, App
from .base import Base, new_id, utcnow
from .call import CALL_STATUS_RANK, CALL_TERMINAL, Call, CallEvent
from .message import STATUS_RANK, TERMINAL, IdempotencyRecord, Message, MessageEvent
from .optout import OptOut
from .proxy import BINDING_STATUSES, Binding, BindingParty, Interaction, ProxyNumber
from .report import CarrierReport
from .template import Template
from .verification import VERIFICATION_STATUSES, FraudGuardPause, Verification, VerificationSend

__all__ = [
    "STATUS_RANK",
    "TERMINAL",
    "ApiKey",
    "App",
    "CarrierReport",
    "Base",
    "IdempotencyRecord",
    "Message",
    "MessageEvent",
    "OptOut",
    "Template",
    "VERIFICATION_STATUSES",
    "FraudGuardPause",
    "Verification",
    "VerificationSend",
    "BINDING_STATUSES",
    "Binding",
    "BindingParty",
    "Interaction",
    "ProxyNumber",
    "CALL_STATUS_RANK",
    "CALL_TERMINAL",
    "Call",
    "CallEvent",
    "new_id",
    "utcnow",
]
