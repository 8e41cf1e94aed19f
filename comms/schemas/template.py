"""Templates."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import PageArgs, Timestamp

KINDS = ("verification", "notification", "promotional")
CHANNELS = ("sms", "voice")


class TemplateSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.\-]{1,100}$"))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    channel = fields.String(load_default="sms", validate=validate.OneOf(CHANNELS))
    body = fields.String(required=True, validate=validate.Length(min=1, max=1600))
    locale = fields.String(allow_none=True, validate=validate.Length(max=20))
    brand = fields.String(allow_none=True, validate=validate.Length(max=100))
    status = fields.String(dump_only=True)
    reject_reason = fields.String(dump_only=True)
    variables = fields.List(fields.String(), dump_only=True)
    encoding = fields.String(dump_only=True)
    segments = fields.Integer(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class TemplatePatchSchema(Schema):
    name = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_.\-]{1,100}$"))
    kind = fields.String(validate=validate.OneOf(KINDS))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    body = fields.String(validate=validate.Length(min=1, max=1600))
    locale = fields.String(allow_none=True, validate=validate.Length(max=20))
    brand = fields.String(allow_none=True, validate=validate.Length(max=100))


class RejectSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class TemplateListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(("pending", "approved", "rejected")))
    kind = fields.String(validate=validate.OneOf(KINDS))


class TemplatePageSchema(Schema):
    data = fields.List(fields.Nested(TemplateSchema))
    next_cursor = fields.String(allow_none=True)
