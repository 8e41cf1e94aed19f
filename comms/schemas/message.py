"""Text messages."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .common import PageArgs, Timestamp

STATUSES = ("scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed", "canceled")


class ParamValue(fields.Field):
    """A template parameter: text or a number, never a nested structure."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError("Parameter values are text or numbers.")
        return str(value)


Params = fields.Dict(
    keys=fields.String(validate=validate.Length(max=64)), values=ParamValue(), load_default=dict
)


def _one_template(data, *, free_text: bool) -> None:
    given = [k for k in ("template_id", "template") if data.get(k)]
    if len(given) > 1:
        raise ValidationError("Give template_id or template, not both.", "template_id")
    if given and free_text and data.get("body"):
        raise ValidationError("Give a template or a body, not both.", "body")


class SendMessageSchema(Schema):
    to = fields.String(required=True, validate=validate.Length(max=40))
    template_id = fields.String(validate=validate.Length(max=40))
    template = fields.String(validate=validate.Length(max=100), metadata={"description": "Template name"})
    params = Params
    body = fields.String(
        validate=validate.Length(min=1, max=1600),
        metadata={"description": "Free text, only where the app allows it"},
    )
    from_ = fields.String(data_key="from", validate=validate.Length(max=40))
    status_callback = fields.URL(require_tld=False, schemes={"http", "https"})
    client_ref = fields.String(validate=validate.Length(max=200))
    send_at = Timestamp()

    @validates_schema
    def _template_or_body(self, data, **kwargs):
        _one_template(data, free_text=True)


class BatchEntrySchema(Schema):
    # Not required here: an entry without a usable number is rejected on its own, not the whole batch.
    to = fields.Raw(load_default=None)
    params = Params
    client_ref = fields.String(validate=validate.Length(max=200))


class BatchEntries(fields.List):
    """The batch's entries, documented as BatchEntry but loaded as plain objects: each entry is judged on
    its own by the service (one bad entry is rejected, not the batch), and skipping marshmallow for
    a thousand nested objects saves most of the request's parsing time."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError("A list of messages is required.")
        if not all(isinstance(entry, dict) for entry in value):
            raise ValidationError("Each message is an object.")
        return value


class SendBatchSchema(Schema):
    template_id = fields.String(validate=validate.Length(max=40))
    template = fields.String(validate=validate.Length(max=100))
    messages = BatchEntries(
        fields.Nested(BatchEntrySchema), required=True, validate=validate.Length(min=1, max=1000)
    )
    from_ = fields.String(data_key="from", validate=validate.Length(max=40))
    status_callback = fields.URL(require_tld=False, schemes={"http", "https"})
    send_at = Timestamp()

    @validates_schema
    def _template(self, data, **kwargs):
        _one_template(data, free_text=False)
        if not (data.get("template_id") or data.get("template")):
            raise ValidationError("A batch needs template_id or template.", "template_id")


class EventSchema(Schema):
    status = fields.String()
    at = Timestamp()
    detail = fields.String(allow_none=True)


class MessageSchema(Schema):
    id = fields.String()
    status = fields.String()
    to = fields.String()
    from_ = fields.String(data_key="from", allow_none=True)
    body = fields.String()
    template_id = fields.String(allow_none=True)
    segments = fields.Integer()
    encoding = fields.String()
    client_ref = fields.String(allow_none=True)
    status_callback = fields.String(allow_none=True)
    send_at = Timestamp(allow_none=True)
    carrier = fields.String(allow_none=True)
    carrier_message_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    price = fields.String(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()
    events = fields.List(fields.Nested(EventSchema))


class AcceptedSchema(Schema):
    index = fields.Integer()
    id = fields.String()
    to = fields.String()
    status = fields.String()


class RejectedSchema(Schema):
    index = fields.Integer()
    error = fields.String()
    message = fields.String()


class BatchResultSchema(Schema):
    accepted = fields.Integer()
    messages = fields.List(fields.Nested(AcceptedSchema))
    rejected = fields.List(fields.Nested(RejectedSchema))


class MessageListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    to = fields.String()
    client_ref = fields.String()
    since = Timestamp()
    until = Timestamp()


class MessagePageSchema(Schema):
    data = fields.List(fields.Nested(MessageSchema))
    next_cursor = fields.String(allow_none=True)


class OutboxArgs(Schema):
    to = fields.String()
    kind = fields.String(validate=validate.OneOf(("sms", "call")))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=1000))


class OutboxItemSchema(Schema):
    kind = fields.String()
    to = fields.String()
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    body = fields.String()
    text = fields.String()
    voice = fields.String(allow_none=True, metadata={"description": "A call's voice"})
    language = fields.String(allow_none=True, metadata={"description": "A call's language"})
    loop = fields.Integer(metadata={"description": "How many times a call reads its text"})
    reference = fields.String()
    at = Timestamp()


class OutboxSchema(Schema):
    data = fields.List(fields.Nested(OutboxItemSchema))
