"""Verifications (login codes) and the fraud guard."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..models import VERIFICATION_STATUSES
from .common import Timestamp


class StartVerificationSchema(Schema):
    to = fields.String(required=True, validate=validate.Length(max=40))
    channel = fields.String(
        load_default="sms",
        validate=validate.OneOf(("sms", "voice")),
        metadata={"description": "voice: a call reads the code digit by digit, twice"},
    )
    locale = fields.String(
        validate=validate.Length(min=2, max=20),
        metadata={"description": "en, zh-CN, zh-TW, ja, es, pt, fr, de; default: by the number's country"},
    )
    code_length = fields.Integer(
        validate=validate.Range(min=4, max=10), metadata={"description": "Default: the app's (6)"}
    )
    template_id = fields.String(
        validate=validate.Length(max=40),
        metadata={"description": "An approved verification template with exactly {{code}}"},
    )
    client_ip = fields.String(
        validate=validate.Length(max=64),
        metadata={"description": "The end user's IP, for the per-IP limit (IPv6 counted per /64)"},
    )


class CheckVerificationSchema(Schema):
    to = fields.String(validate=validate.Length(max=40))
    verification_id = fields.String(validate=validate.Length(max=40))
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9]{4,10}$", error="A code is 4 to 10 digits, sent as a string."),
    )

    @validates_schema
    def _one_target(self, data, **kwargs):
        given = [k for k in ("to", "verification_id") if data.get(k)]
        if len(given) != 1:
            raise ValidationError("Give exactly one of to or verification_id.", "verification_id")


class SendAttemptSchema(Schema):
    message_id = fields.String(allow_none=True, metadata={"description": "The text that carried the code"})
    call_id = fields.String(allow_none=True, metadata={"description": "The call that read the code"})
    channel = fields.String()
    at = Timestamp()
    status = fields.String(allow_none=True, metadata={"description": "The message's or call's status"})


class VerificationSchema(Schema):
    id = fields.String()
    to = fields.String()
    country = fields.String()
    channel = fields.String()
    status = fields.String(metadata={"enum": list(VERIFICATION_STATUSES)})
    valid = fields.Boolean(metadata={"description": "True once approved"})
    locale = fields.String()
    code_length = fields.Integer()
    template_id = fields.String(allow_none=True)
    checks = fields.Integer(metadata={"description": "Checks made so far"})
    max_checks = fields.Integer()
    expires_at = Timestamp()
    approved_at = Timestamp(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()
    send_attempts = fields.List(fields.Nested(SendAttemptSchema))


class CheckResultSchema(Schema):
    id = fields.String()
    to = fields.String()
    channel = fields.String()
    status = fields.String(metadata={"enum": list(VERIFICATION_STATUSES)})
    valid = fields.Boolean(metadata={"description": "True only for the check that approved it"})
    checks = fields.Integer()
    max_checks = fields.Integer()


class PauseSchema(Schema):
    country = fields.String()
    sends = fields.Integer(metadata={"description": "Codes sent in the hour judged"})
    approvals = fields.Integer()
    conversion = fields.Float()
    created_at = Timestamp(data_key="paused_at")
    until = Timestamp()
    lifted_at = Timestamp(allow_none=True)
    lifted_by = fields.String(allow_none=True)


class CountryStatsSchema(Schema):
    country = fields.String()
    sends = fields.Integer()
    approvals = fields.Integer()
    conversion = fields.Float(allow_none=True)


class FraudGuardSchema(Schema):
    enabled = fields.Boolean()
    min_sends = fields.Integer()
    min_conversion = fields.Float()
    paused = fields.List(fields.Nested(PauseSchema), metadata={"description": "Countries paused now"})
    countries = fields.List(
        fields.Nested(CountryStatsSchema), metadata={"description": "Conversion per country, last hour"}
    )
