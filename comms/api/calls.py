"""Voice notifications: place a call that reads a templated text aloud, read one, list them."""

from __future__ import annotations

from flask.views import MethodView

from ..models import Call
from ..schemas.call import CallListArgs, CallPageSchema, CallSchema, SendCallSchema
from ..schemas.common import ErrorSchema
from ..services import calls
from .base import Blueprint, caller, idempotent, runtime, session

blp = Blueprint("calls", __name__, url_prefix="/v1/calls", description="Voice notifications (calls)")

_call_schema = CallSchema()


def call_view(call: Call, events=None) -> dict:
    """The call as the API shows it (not yet serialised), with its timeline."""
    events = calls.events(session(), call.id) if events is None else events
    return {**{c.key: getattr(call, c.key) for c in Call.__mapper__.column_attrs}, "events": events}


@blp.route("")
class Calls(MethodView):
    @blp.arguments(SendCallSchema)
    @blp.response(202, CallSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.alt_response(429, schema=ErrorSchema, description="max_call_attempts: too many calls to the number")
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"}}])
    def post(self, data):
        """Call a number and read a voice template aloud. Stored before the 202, placed by a worker."""
        created = []

        def produce():
            call = calls.create(runtime(), session(), caller().app, data)
            created.append(call)
            first_event = {"status": call.status, "at": call.created_at, "detail": None}
            return 202, _call_schema.dump(call_view(call, events=[first_event]))

        response, replayed = idempotent("calls.create", produce)
        if created and not replayed:
            calls.dispatch(runtime().queues, runtime().db.session, [calls.job(created[0])])
        return response

    @blp.arguments(CallListArgs, location="query")
    @blp.response(200, CallPageSchema)
    def get(self, args):
        """The app's calls, newest first, with filters and cursor pagination."""
        limit = args["limit"]
        rows = calls.list_calls(session(), caller().app.id, args, limit=limit, cursor=args.get("cursor"))
        more = len(rows) > limit
        rows = rows[:limit]
        return {"data": [call_view(c) for c in rows], "next_cursor": rows[-1].id if more else None}


@blp.route("/<call_id>")
class OneCall(MethodView):
    @blp.response(200, CallSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, call_id):
        """A call with its status timeline and, once it ended, its duration."""
        return call_view(calls.get(session(), caller().app.id, call_id))
