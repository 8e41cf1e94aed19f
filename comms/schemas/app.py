"""The calling app's settings."""

from __future__ import annotations

from marshmallow import Schema, fields, post_load, validate

from .common import Timestamp


class VerificationSettingsSchema(Schema):
    code_length = fields.Integer(validate=validate.Range(min=4, max=10))
    code_ttl = fields.Integer(validate=validate.Range(min=60, max=86400))
    max_checks = fields.Integer(validate=validate.Range(min=1, max=20))
    max_sends = fields.Integer(validate=validate.Range(min=1, max=50))
    send_window = fields.Integer(validate=validate.Range(min=60, max=86400))
    min_resend_interval = fields.Integer(validate=validate.Range(min=0, max=3600))
    max_sends_per_ip_per_hour = fields.Integer(
        validate=validate.Range(min=0, max=1_000_000), metadata={"description": "0: no cap"}
    )
    max_sends_per_country_per_day = fields.Integer(
        validate=validate.Range(min=0, max=100_000_000), metadata={"description": "0: no cap"}
    )
    allowed_countries = fields.List(
        fields.String(validate=validate.Regexp(r"^[A-Za-z]{2}$")),
        metadata={"description": "ISO codes login codes may go to, within the app's own; empty: all"},
    )
    fraud_guard = fields.Boolean(metadata={"description": "Pause countries with suspiciously low conversion"})
    fraud_guard_min_sends = fields.Integer(validate=validate.Range(min=1, max=1_000_000))
    fraud_guard_min_conversion = fields.Float(validate=validate.Range(min=0, max=1))
    fraud_guard_pause = fields.Integer(
        validate=validate.Range(min=60, max=30 * 86400), metadata={"description": "Seconds"}
    )

    @post_load
    def _upper_countries(self, data, **kwargs):
        if "allowed_countries" in data:
            data["allowed_countries"] = sorted({c.upper() for c in data["allowed_countries"]})
        return data


class VoiceSettingsSchema(Schema):
    """Calls to one number per app; 0 turns a cap off."""

    max_calls_per_minute = fields.Integer(validate=validate.Range(min=0, max=1000))
    max_calls_per_hour = fields.Integer(validate=validate.Range(min=0, max=10_000))
    max_calls_per_day = fields.Integer(validate=validate.Range(min=0, max=100_000))


class AppSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(validate=validate.Length(min=1, max=200))
    status_callback = fields.URL(allow_none=True, require_tld=False, schemes={"http", "https"})
    allowed_countries = fields.List(fields.String(validate=validate.Regexp(r"^[A-Za-z]{2}$")))
    allow_free_text = fields.Boolean()
    verification = fields.Nested(VerificationSettingsSchema)
    voice = fields.Nested(VoiceSettingsSchema)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class AppPatchSchema(AppSchema):
    """What an app may change about itself; ``allow_free_text`` is for admin keys only."""

    class Meta:
        exclude = ("allow_free_text",)


class AdminAppPatchSchema(AppSchema):
    """What an admin key may change about any app."""


class WebhookSecretSchema(Schema):
    webhook_secret = fields.String()


class CreateAppSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    admin = fields.Boolean(load_default=False)


class CreatedAppSchema(AppSchema):
    api_key = fields.String(dump_only=True)
