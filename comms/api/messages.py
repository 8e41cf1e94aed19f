"""Text messages: send one, send a batch, read, list, cancel."""

from __future__ import annotations

from flask.views import MethodView

from ..models import Message
from ..schemas.common import ErrorSchema
from ..schemas.message import (
    BatchResultSchema,
    MessageListArgs,
    MessagePageSchema,
    MessageSchema,
    SendBatchSchema,
    SendMessageSchema,
)
from ..services import messages
from .base import Blueprint, caller, idempotent, runtime, session

blp = Blueprint("messages", __name__, url_prefix="/v1/messages", description="Text messages (SMS)")

_message_schema = MessageSchema()
_batch_schema = BatchResultSchema()


def message_view(message: Message, events=None) -> dict:
    """The message as the API shows it (not yet serialised), with its timeline."""
    events = messages.events(session(), message.id) if events is None else events
    data = {c.key: getattr(message, c.key) for c in Message.__mapper__.column_attrs}
    return {**data, "events": events}


@blp.route("")
class Messages(MethodView):
    @blp.arguments(SendMessageSchema)
    @blp.response(202, MessageSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"}}])
    def post(self, data):
        """Send a templated text. It is stored before the 202 and delivered by a worker."""
        created = []

        def produce():
            message = messages.create(session(), caller().app, data)
            created.append(message)
            first_event = {"status": message.status, "at": message.created_at, "detail": None}
            return 202, _message_schema.dump(message_view(message, events=[first_event]))

        response, replayed = idempotent("messages.create", produce)
        if created and not replayed and created[0].status == "queued":
            message = created[0]
            messages.dispatch(
                runtime().queues, runtime().db.session, [(message.queue, message.job_id, [message.id])]
            )
        return response

    @blp.arguments(MessageListArgs, location="query")
    @blp.response(200, MessagePageSchema)
    def get(self, args):
        """The app's messages, newest first, with filters and cursor pagination."""
        limit = args["limit"]
        rows = messages.list_messages(
            session(), caller().app.id, args, limit=limit, cursor=args.get("cursor")
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {"data": [message_view(m) for m in rows], "next_cursor": rows[-1].id if more else None}


@blp.route("/batch")
class Batch(MethodView):
    @blp.arguments(SendBatchSchema)
    @blp.response(202, BatchResultSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"}}])
    def post(self, data):
        """Send one template to up to 1,000 recipients; each entry is accepted or rejected on its own."""
        planned = []

        def produce():
            result = messages.create_batch(
                session(), caller().app, data, chunk_size=runtime().settings.batch_chunk_size
            )
            planned.extend(result.jobs)
            return 202, _batch_schema.dump(
                {"accepted": len(result.accepted), "messages": result.accepted, "rejected": result.rejected}
            )

        response, replayed = idempotent("messages.batch", produce)
        if planned and not replayed:
            messages.dispatch(runtime().queues, runtime().db.session, planned)
        return response


@blp.route("/<message_id>")
class OneMessage(MethodView):
    @blp.response(200, MessageSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, message_id):
        """A message with its status timeline."""
        return message_view(messages.get(session(), caller().app.id, message_id))


@blp.route("/<message_id>/cancel")
class Cancel(MethodView):
    @blp.response(200, MessageSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def post(self, message_id):
        """Cancel a scheduled message that has not gone yet."""
        message = messages.cancel(session(), caller().app.id, message_id)
        session().commit()
        return message_view(message)
