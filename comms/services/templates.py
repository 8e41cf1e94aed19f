"""Templates: create, edit, approve or reject, and render with parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import sms_encoding
from ..errors import (
    CommsError,
    MissingParams,
    NameTaken,
    TemplateMismatch,
    TemplateNotApproved,
    TemplateNotFound,
    UnexpectedParams,
    ValidationFailed,
)
from ..models import Template


def _check_body(kind: str, body: str) -> list[str]:
    names = sms_encoding.variables(body)
    if kind == "verification" and names != ["code"]:
        raise ValidationFailed("A verification template has exactly one variable, {{code}}.", field="body")
    return names


def _measure(template: Template) -> None:
    info = sms_encoding.estimate_template(template.body)
    template.variables = sms_encoding.variables(template.body)
    template.encoding = str(info.encoding)
    template.segments = info.segments


def create(session: Session, app_id: str, data: Mapping[str, Any], *, auto_approve: bool) -> Template:
    _check_body(data["kind"], data["body"])
    template = Template(
        app_id=app_id,
        status="approved" if auto_approve else "pending",
        **{k: data.get(k) for k in ("name", "kind", "channel", "body", "locale", "brand")},
    )
    _measure(template)
    session.add(template)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise NameTaken(f"A template named {data['name']!r} already exists.", field="name") from None
    return template


def get(
    session: Session, app_id: str, template_id: str, *, missing: type[CommsError] = TemplateNotFound
) -> Template:
    """The app's template; ``missing`` is what to raise otherwise (a 404 for the template's own URL)."""
    template = session.scalar(select(Template).where(Template.id == template_id, Template.app_id == app_id))
    if template is None:
        raise missing("No such template.", field="template_id")
    return template


def get_by_name(session: Session, app_id: str, name: str) -> Template:
    template = session.scalar(select(Template).where(Template.name == name, Template.app_id == app_id))
    if template is None:
        raise TemplateNotFound(f"No template named {name!r}.", field="template")
    return template


def update(
    session: Session, template: Template, changes: Mapping[str, Any], *, auto_approve: bool
) -> Template:
    """Edit a template; a changed body or kind sends an approved template back to review."""
    kind = changes.get("kind", template.kind)
    body = changes.get("body", template.body)
    _check_body(kind, body)
    content_changed = body != template.body or kind != template.kind
    for field in ("name", "kind", "channel", "body", "locale", "brand"):
        if field in changes:
            setattr(template, field, changes[field])
    _measure(template)
    if content_changed:
        template.status = "approved" if auto_approve else "pending"
        template.reject_reason = None
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise NameTaken(f"A template named {changes.get('name')!r} already exists.", field="name") from None
    return template


def review(template: Template, approve: bool, reason: str | None = None) -> Template:
    template.status = "approved" if approve else "rejected"
    template.reject_reason = None if approve else reason
    return template


def for_sending(
    template: Template, channel: str, params: Mapping[str, Any] | None, *, field: str = "params"
) -> str:
    """Render an approved template, refusing missing or unexpected parameters."""
    if template.channel != channel:
        raise TemplateMismatch(
            f"Template {template.name!r} is a {template.channel} template.", field="template_id"
        )
    if template.status != "approved":
        raise TemplateNotApproved(
            f"Template {template.name!r} is {template.status}, not approved.", field="template_id"
        )
    params = params or {}
    missing = [name for name in template.variables if name not in params]
    if missing:
        raise MissingParams(
            f"Missing template parameters: {', '.join(missing)}.",
            errors={field: [f"Missing: {', '.join(missing)}."]},
        )
    extra = sorted(set(params) - set(template.variables))
    if extra:
        raise UnexpectedParams(
            f"Parameters not used by the template: {', '.join(extra)}.",
            errors={field: [f"Not in the template: {', '.join(extra)}."]},
        )
    return sms_encoding.render(template.body, {k: str(v) for k, v in params.items()})
