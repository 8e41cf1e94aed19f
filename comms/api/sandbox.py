"""The sandbox outbox: what the sandbox carrier "sent" for the calling app."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.views import MethodView

from ..carriers.sandbox import SandboxCarrier
from ..errors import NotFound
from ..schemas.message import OutboxArgs, OutboxSchema
from ..services import phone
from .base import Blueprint, caller, runtime

blp = Blueprint("sandbox", __name__, url_prefix="/v1/sandbox", description="The sandbox carrier's outbox")


@blp.route("/outbox")
class Outbox(MethodView):
    @blp.arguments(OutboxArgs, location="query")
    @blp.response(200, OutboxSchema)
    def get(self, args):
        """Newest first; filter by ``to`` and ``kind``. Exists only while a sandbox carrier is configured."""
        sandboxes = [c for c in runtime().carriers.values() if isinstance(c, SandboxCarrier)]
        if not sandboxes:
            raise NotFound("The sandbox carrier is not enabled in this deployment.")
        app_id = caller().app.id
        to = phone.parse(args["to"]).e164 if args.get("to") else None
        items = []
        for sandbox in sandboxes:
            # Read past the limit so filters still fill a page.
            for item in sandbox.outbox(app_id, limit=1000 if (to or args.get("kind")) else args["limit"]):
                if (to is None or item["to"] == to) and (
                    not args.get("kind") or item["kind"] == args["kind"]
                ):
                    items.append({**item, "at": datetime.fromtimestamp(item["at"], UTC)})
        items.sort(key=lambda item: item["at"], reverse=True)
        return {"data": items[: args["limit"]]}
