"""The emulator's own ``/_emulator`` API: settings, what was received, and simulated inbound traffic."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from comms.sms_encoding import analyze

from .resources import API_VERSION, new_sid

if TYPE_CHECKING:
    from .app import EmulatorApp


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _problem(status: int, message: str) -> Response:
    return _json(status, {"status": status, "message": message})


def listed(record: dict[str, Any]) -> dict[str, Any]:
    """A record with what the client sent (``request``: its form) and any ``twiml`` it ran or got back."""
    shown = {k: v for k, v in record.items() if not k.startswith("_")}
    shown["request"] = record.get("_params", {})
    if "_events" in record:
        shown["request"] = dict(shown["request"], StatusCallbackEvent=record["_events"])
    if record.get("_twiml") is not None:
        shown["twiml"] = record["_twiml"]
    return shown


class ControlAPI:
    """Routes ``/_emulator/...``; no authentication, as it is a local test tool."""

    def __init__(self, app: EmulatorApp):
        self.app = app

    def dispatch(self, request: Request, parts: list[str]) -> Response:
        route = (request.method, "/".join(parts))
        if route == ("GET", "config"):
            return _json(200, self.app.config.public())
        if route == ("POST", "config"):
            return self._configure(request)
        if route == ("POST", "reset"):
            self.app.reset()
            return _json(200, self.app.config.public())
        if route == ("GET", "stats"):
            return _json(200, self.app.stats())
        if route in {("GET", "messages"), ("GET", "calls")}:
            return self._listing(request, parts[0])
        if route == ("POST", "inbound/call"):
            return self._inbound(request, "call")
        if route == ("POST", "inbound/sms"):
            return self._inbound(request, "sms")
        return _problem(404, f"no emulator route {request.method} {request.path}")

    def _configure(self, request: Request) -> Response:
        changes = request.get_json(silent=True)
        if not isinstance(changes, dict):
            return _problem(400, "send a JSON object of settings")
        try:
            config = self.app.configure(changes)
        except (TypeError, ValueError) as exc:
            return _problem(400, str(exc))
        return _json(200, config.public())

    def _listing(self, request: Request, kind: str) -> Response:
        store = self.app.messages if kind == "messages" else self.app.calls
        try:
            limit = max(1, min(int(request.args.get("limit", 100)), 10_000))
        except ValueError:
            return _problem(400, "limit must be a number")
        records = store.newest(to=request.args.get("to"), limit=limit)
        return _json(200, {kind: [listed(record) for record in records]})

    def _inbound(self, request: Request, kind: str) -> Response:
        """Send the webhook Twilio would send for an inbound call or text; answer with the reply."""
        payload = request.get_json(silent=True) or {}
        needed = ("from", "to", "url") + (("body",) if kind == "sms" else ())
        missing = [name for name in needed if not payload.get(name)]
        if missing:
            return _problem(400, f"missing fields: {', '.join(missing)}")
        config = self.app.config
        common = {
            "AccountSid": config.account_sid,
            "ApiVersion": API_VERSION,
            "From": payload["from"],
            "To": payload["to"],
        }
        if kind == "call":
            sid = new_sid("CA")
            params = dict(
                common,
                CallSid=sid,
                CallStatus="ringing",
                Direction="inbound",
                Caller=payload["from"],
                Called=payload["to"],
            )
        else:
            sid = new_sid("SM")
            body = str(payload["body"])
            params = dict(
                common,
                MessageSid=sid,
                SmsSid=sid,
                SmsMessageSid=sid,
                Body=body,
                NumMedia="0",
                NumSegments=str(analyze(body).segments),
                SmsStatus="received",
            )
        try:
            response = self.app.sender.request(payload["url"], params, config.callback_timeout)
        except Exception as exc:  # the receiver being down is the test's finding, not an emulator error
            return _problem(502, f"could not reach {payload['url']}: {exc}")
        body_text = response.body.decode("utf-8", "replace")
        record = {
            "sid": sid,
            "direction": "inbound",
            "from": payload["from"],
            "to": payload["to"],
            "status": "ringing" if kind == "call" else "received",
            "_params": params,
            "_twiml": body_text,
        }
        if kind == "sms":
            record["body"] = params["Body"]
        (self.app.calls if kind == "call" else self.app.messages).add(record)
        return _json(
            200,
            {
                "sid": sid,
                "status": response.status,
                "content_type": response.content_type,
                "body": body_text,
            },
        )
