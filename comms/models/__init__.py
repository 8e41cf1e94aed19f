"""SQLAlchemy models; importing this package registers every table on ``Base.metadata``."""

from .app import ApiKey, App
from .base import Base, new_id, utcnow
from .message import STATUS_RANK, TERMINAL, IdempotencyRecord, Message, MessageEvent
from .optout import OptOut
from .template import Template

__all__ = [
    "STATUS_RANK",
    "TERMINAL",
    "ApiKey",
    "App",
    "Base",
    "IdempotencyRecord",
    "Message",
    "MessageEvent",
    "OptOut",
    "Template",
    "new_id",
    "utcnow",
]
