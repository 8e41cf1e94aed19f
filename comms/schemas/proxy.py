"""Masked numbers: proxy numbers, bindings and their interactions."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..services.bindings import MAX_TTL
from .common import PageArgs, Timestamp

CAPABILITIES = ("voice", "sms")
POOL = validate.Regexp(r"^[A-Za-z0-9_.\-]{1,60}$", error="A pool name is 1-60 letters, digits, _ . or -.")
Capabilities = fields.List(
    fields.String(validate=validate.OneOf(CAPABILITIES)),
    validate=validate.Length(min=1, max=2),
    metadata={"description": "What the number can carry: voice, sms"},
)


class NumberSchema(Schema):
    number = fields.String(required=True, validate=validate.Length(max=40))
    carrier = fields.String(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "A configured carrier"},
    )
    capabilities = Capabilities
    pool = fields.String(load_default="default", validate=POOL)
    active_bindings = fields.Integer(dump_only=True)
    created_at = Timestamp(dump_only=True)


class NumberListArgs(PageArgs):
    pool = fields.String(validate=POOL)


class NumberPageSchema(Schema):
    data = fields.List(fields.Nested(NumberSchema))
    next_cursor = fields.String(allow_none=True)


class NumberDeleteArgs(Schema):
    release = fields.Boolean(
        load_default=False, metadata={"description": "Release the number's active bindings first"}
    )


def _ttl_or_expires_at(data) -> None:
    if data.get("ttl") is not None and data.get("expires_at") is not None:
        raise ValidationError("Give ttl or expires_at, not both.", "ttl")


Ttl = fields.Integer(
    validate=validate.Range(min=1, max=MAX_TTL),
    metadata={"description": "Seconds until the binding expires (default: a day)"},
)


class BindingCreateSchema(Schema):
    party_a = fields.String(required=True, validate=validate.Length(max=40))
    party_b = fields.String(required=True, validate=validate.Length(max=40))
    ttl = Ttl
    expires_at = Timestamp()
    pool = fields.String(load_default="default", validate=POOL)
    record = fields.Boolean(load_default=False, metadata={"description": "Record bridged calls"})
    client_ref = fields.String(validate=validate.Length(max=200))
    capabilities = Capabilities

    @validates_schema
    def _expiry(self, data, **kwargs):
        _ttl_or_expires_at(data)


class BindingPatchSchema(Schema):
    party_a = fields.String(validate=validate.Length(max=40))
    party_b = fields.String(validate=validate.Length(max=40))
    ttl = Ttl
    expires_at = Timestamp()
    record = fields.Boolean()

    @validates_schema
    def _expiry(self, data, **kwargs):
        _ttl_or_expires_at(data)


class BindingSchema(Schema):
    id = fields.String()
    proxy_number = fields.String()
    party_a = fields.String()
    party_b = fields.String()
    status = fields.String(metadata={"description": "active, released or expired"})
    expires_at = Timestamp()
    pool = fields.String()
    record = fields.Boolean()
    client_ref = fields.String(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()
    ended_at = Timestamp(allow_none=True)


class BindingListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(("active", "released", "expired")))
    client_ref = fields.String(validate=validate.Length(max=200))
    party = fields.String(validate=validate.Length(max=40))
    proxy_number = fields.String(validate=validate.Length(max=40))


class BindingPageSchema(Schema):
    data = fields.List(fields.Nested(BindingSchema))
    next_cursor = fields.String(allow_none=True)


class InteractionSchema(Schema):
    id = fields.String()
    binding_id = fields.String()
    kind = fields.String(metadata={"description": "call or sms"})
    direction = fields.String(metadata={"description": "a_to_b or b_to_a"})
    from_ = fields.String(data_key="from")
    to = fields.String()
    proxy_number = fields.String()
    status = fields.String(
        metadata={
            "description": "A call's status (initiated … completed, busy, no-answer, failed, canceled), "
            "or a text's relayed message status"
        }
    )
    duration = fields.Integer(allow_none=True, metadata={"description": "Seconds, once a call completed"})
    recording_url = fields.String(allow_none=True)
    message_id = fields.String(allow_none=True, metadata={"description": "The relayed text's message"})
    created_at = Timestamp()
    answered_at = Timestamp(allow_none=True)
    ended_at = Timestamp(allow_none=True)
    updated_at = Timestamp()


class InteractionPageSchema(Schema):
    data = fields.List(fields.Nested(InteractionSchema))
    next_cursor = fields.String(allow_none=True)
