"""Voice notifications (calls that read a text aloud)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..models.call import CALL_STATUS_RANK
from .common import PageArgs, Timestamp
from .message import EventSchema, Params

STATUSES = tuple(CALL_STATUS_RANK)
MACHINE_DETECTION = ("Enable", "DetectMessageEnd")


class SendCallSchema(Schema):
    to = fields.String(required=True, validate=validate.Length(max=40))
    template_id = fields.String(validate=validate.Length(max=40))
    template = fields.String(validate=validate.Length(max=100), metadata={"description": "Template name"})
    params = Params
    text = fields.String(
        validate=validate.Length(min=1, max=4000),
        metadata={"description": "Free text to read aloud, only where the app allows free text"},
    )
    voice = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9._\-]{1,60}$"),
        metadata={"description": "The carrier's voice, e.g. Twilio's alice or Polly.Joanna"},
    )
    language = fields.String(
        validate=validate.Length(min=2, max=20),
        metadata={"description": "BCP 47 tag (en-US, zh-CN …); default: the template's locale, else en-US"},
    )
    repeat = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=3),
        metadata={"description": "How many times the text is read"},
    )
    machine_detection = fields.String(
        validate=validate.OneOf(MACHINE_DETECTION),
        metadata={"description": "Answering-machine detection (DetectMessageEnd: read after the beep)"},
    )
    from_ = fields.String(data_key="from", validate=validate.Length(max=40))
    status_callback = fields.URL(require_tld=False, schemes={"http", "https"})
    client_ref = fields.String(validate=validate.Length(max=200))

    @validates_schema
    def _template_or_text(self, data, **kwargs):
        if data.get("template_id") and data.get("template"):
            raise ValidationError("Give template_id or template, not both.", "template_id")
        if (data.get("template_id") or data.get("template")) and data.get("text"):
            raise ValidationError("Give a template or a text, not both.", "text")


class CallSchema(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": " | ".join(STATUSES)})
    to = fields.String()
    from_ = fields.String(data_key="from", allow_none=True)
    text = fields.String(metadata={"description": "What is read aloud (a login code's is redacted)"})
    template_id = fields.String(allow_none=True)
    voice = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    repeat = fields.Integer()
    machine_detection = fields.String(allow_none=True)
    purpose = fields.String()
    client_ref = fields.String(allow_none=True)
    status_callback = fields.String(allow_none=True)
    carrier = fields.String(allow_none=True)
    carrier_call_id = fields.String(allow_none=True)
    duration = fields.Integer(allow_none=True, metadata={"description": "Seconds, once the call ended"})
    error = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    price = fields.String(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()
    events = fields.List(fields.Nested(EventSchema))


class CallListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    to = fields.String()
    client_ref = fields.String()
    since = Timestamp()
    until = Timestamp()


class CallPageSchema(Schema):
    data = fields.List(fields.Nested(CallSchema))
    next_cursor = fields.String(allow_none=True)
