"""Schemas shared by every resource: the error body and pagination."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ErrorSchema(Schema):
    code = fields.Integer(metadata={"description": "HTTP status"})
    status = fields.String(metadata={"description": "HTTP reason"})
    message = fields.String()
    error = fields.String(metadata={"description": "Stable machine-readable reason to branch on"})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class PageArgs(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))
    cursor = fields.String(load_default=None)


class Timestamp(fields.DateTime):
    """ISO 8601 UTC with a ``Z``, as the contract's timestamps are written."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _deserialize(self, value, attr, data, **kwargs):
        from datetime import UTC

        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            raise self.make_error("invalid", input=value, obj_type="aware datetime")
        return parsed.astimezone(UTC)
