"""Templates: CRUD for the app, approval for admin keys."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from ..errors import NotFound
from ..models import Template
from ..schemas.common import ErrorSchema
from ..schemas.template import (
    RejectSchema,
    TemplateListArgs,
    TemplatePageSchema,
    TemplatePatchSchema,
    TemplateSchema,
)
from ..services import templates
from .base import Blueprint, admin, caller, runtime, session

blp = Blueprint("templates", __name__, url_prefix="/v1/templates", description="Message templates")


def _auto_approve() -> bool:
    return runtime().settings.auto_approve_templates


def _find(template_id: str) -> Template:
    """The template, within the caller's app, or for an admin key within any app."""
    who = caller()
    if who.is_admin:
        found = session().get(Template, template_id)
        if found is not None:
            return found
    return templates.get(session(), who.app.id, template_id, missing=NotFound)


@blp.route("")
class Templates(MethodView):
    @blp.arguments(TemplateSchema)
    @blp.response(201, TemplateSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def post(self, data):
        """Create a template; it is ``pending`` until an admin approves it (or auto-approval is on)."""
        template = templates.create(session(), caller().app.id, data, auto_approve=_auto_approve())
        session().commit()
        return template

    @blp.arguments(TemplateListArgs, location="query")
    @blp.response(200, TemplatePageSchema)
    def get(self, args):
        """The app's templates, newest first."""
        query = select(Template).where(Template.app_id == caller().app.id)
        for field in ("status", "kind"):
            if args.get(field):
                query = query.where(getattr(Template, field) == args[field])
        if args.get("cursor"):
            query = query.where(Template.id < args["cursor"])
        rows = list(session().scalars(query.order_by(Template.id.desc()).limit(args["limit"] + 1)))
        more = len(rows) > args["limit"]
        rows = rows[: args["limit"]]
        return {"data": rows, "next_cursor": rows[-1].id if more else None}


@blp.route("/<template_id>")
class OneTemplate(MethodView):
    @blp.response(200, TemplateSchema)
    def get(self, template_id):
        """One template."""
        return _find(template_id)

    @blp.arguments(TemplatePatchSchema)
    @blp.response(200, TemplateSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    def patch(self, changes, template_id):
        """Edit a template; editing an approved template's body sends it back to ``pending``."""
        template = templates.update(session(), _find(template_id), changes, auto_approve=_auto_approve())
        session().commit()
        return template

    @blp.response(204)
    def delete(self, template_id):
        """Delete a template; messages already sent keep their text."""
        session().delete(_find(template_id))
        session().commit()


@blp.route("/<template_id>/approve")
class Approve(MethodView):
    @blp.response(200, TemplateSchema)
    @blp.alt_response(403, schema=ErrorSchema)
    def post(self, template_id):
        """Approve a template (admin keys only)."""
        admin()
        template = templates.review(_find(template_id), approve=True)
        session().commit()
        return template


@blp.route("/<template_id>/reject")
class Reject(MethodView):
    @blp.arguments(RejectSchema)
    @blp.response(200, TemplateSchema)
    @blp.alt_response(403, schema=ErrorSchema)
    def post(self, data, template_id):
        """Reject a template with a reason (admin keys only)."""
        admin()
        template = templates.review(_find(template_id), approve=False, reason=data["reason"])
        session().commit()
        return template
