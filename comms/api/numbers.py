"""Proxy numbers for masked calls and texts: owned by the deployment, managed with admin keys."""

from __future__ import annotations

from flask.views import MethodView

from ..models import ProxyNumber
from ..schemas.common import ErrorSchema
from ..schemas.proxy import NumberDeleteArgs, NumberListArgs, NumberPageSchema, NumberSchema
from ..services import numbers
from .base import Blueprint, admin, runtime, session

blp = Blueprint("numbers", __name__, url_prefix="/v1/numbers", description="Proxy numbers (admin keys)")


def number_view(number: ProxyNumber) -> dict:
    data = {c.key: getattr(number, c.key) for c in ProxyNumber.__mapper__.column_attrs}
    return {**data, "capabilities": numbers.capabilities(number)}


@blp.route("")
class Numbers(MethodView):
    @blp.arguments(NumberSchema)
    @blp.response(201, NumberSchema)
    @blp.alt_response(400, schema=ErrorSchema)
    @blp.alt_response(403, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def post(self, data):
        """Add a number of a configured carrier to a pool (``default`` unless named)."""
        admin()
        number = numbers.add(session(), data, runtime().carriers.keys())
        session().commit()
        return number_view(number)

    @blp.arguments(NumberListArgs, location="query")
    @blp.response(200, NumberPageSchema)
    @blp.alt_response(403, schema=ErrorSchema)
    def get(self, args):
        """The proxy numbers, by number, with how many active bindings each carries."""
        admin()
        rows = numbers.list_numbers(
            session(), args.get("pool"), limit=args["limit"], cursor=args.get("cursor")
        )
        more = len(rows) > args["limit"]
        rows = rows[: args["limit"]]
        return {"data": [number_view(n) for n in rows], "next_cursor": rows[-1].number if more else None}


@blp.route("/<number>")
class OneNumber(MethodView):
    @blp.response(200, NumberSchema)
    @blp.alt_response(403, schema=ErrorSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, number):
        """One proxy number."""
        admin()
        return number_view(numbers.get(session(), number))

    @blp.arguments(NumberDeleteArgs, location="query")
    @blp.response(204)
    @blp.alt_response(403, schema=ErrorSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def delete(self, args, number):
        """Retire a number. While it carries active bindings this is a 409 ``number_in_use``, unless
        ``release=true`` releases them first."""
        admin()
        numbers.remove(session(), number, release=args["release"])
        session().commit()
