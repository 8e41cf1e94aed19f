"""Bindings: two parties and the proxy number they reach each other through; their interactions."""

from __future__ import annotations

from flask.views import MethodView

from ..models import Binding
from ..schemas.common import ErrorSchema, PageArgs
from ..schemas.proxy import (
    BindingCreateSchema,
    BindingListArgs,
    BindingPageSchema,
    BindingPatchSchema,
    BindingSchema,
    InteractionPageSchema,
)
from ..services import bindings, proxy_routing
from .base import Blueprint, caller, session

blp = Blueprint("bindings", __name__, url_prefix="/v1/bindings", description="Masked-number bindings")


def binding_view(binding: Binding) -> dict:
    data = {c.key: getattr(binding, c.key) for c in Binding.__mapper__.column_attrs}
    data["status"] = bindings.effective_status(binding)
    if data["status"] == "expired" and data["ended_at"] is None:
        data["ended_at"] = binding.expires_at  # expired, not yet marked by the periodic job
    return data


def _find(binding_id: str, *, lock: bool = False) -> Binding:
    """The binding within the caller's app; an admin key reaches any app's (as for templates)."""
    who = caller()
    return bindings.get(session(), None if who.is_admin else who.app.id, binding_id, lock=lock)


@blp.route("")
class Bindings(MethodView):
    @blp.arguments(BindingCreateSchema)
    @blp.response(201, BindingSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    @blp.alt_response(403, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def post(self, data):
        """Bind two parties on a proxy number neither of them uses in another active binding (least-used
        first); 409 ``pool_exhausted`` when the pool has no such number."""
        return binding_view(bindings.create(session(), caller().app, data))

    @blp.arguments(BindingListArgs, location="query")
    @blp.response(200, BindingPageSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    def get(self, args):
        """The app's bindings, newest first; filter by status, client_ref, party or proxy_number."""
        limit = args["limit"]
        rows = bindings.list_bindings(
            session(), caller().app.id, args, limit=limit, cursor=args.get("cursor")
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {"data": [binding_view(b) for b in rows], "next_cursor": rows[-1].id if more else None}


@blp.route("/<binding_id>")
class OneBinding(MethodView):
    @blp.response(200, BindingSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, binding_id):
        """One binding; ``status`` is ``expired`` from the moment ``expires_at`` passes."""
        return binding_view(_find(binding_id))

    @blp.arguments(BindingPatchSchema)
    @blp.response(200, BindingSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def patch(self, changes, binding_id):
        """Extend the expiry (``ttl`` from now, or ``expires_at``), swap a party, or turn recording on or
        off; the proxy number stays. 409 ``party_conflict`` when a new party already holds that number."""
        binding = bindings.modify(session(), caller().app, _find(binding_id, lock=True), changes)
        session().commit()
        return binding_view(binding)

    @blp.response(200, BindingSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def delete(self, binding_id):
        """Release the binding now; calls and texts between its parties stop being bridged."""
        binding = bindings.release(session(), _find(binding_id, lock=True))
        session().commit()
        return binding_view(binding)


@blp.route("/<binding_id>/interactions")
class Interactions(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, InteractionPageSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, args, binding_id):
        """Calls and texts bridged through the binding, oldest first: direction, status, duration,
        timestamps and the recording URL when one was made."""
        binding = _find(binding_id)
        limit = args["limit"]
        rows = proxy_routing.interactions(session(), binding.id, limit=limit, cursor=args.get("cursor"))
        more = len(rows) > limit
        rows = rows[:limit]
        return {"data": rows, "next_cursor": rows[-1]["id"] if more else None}
