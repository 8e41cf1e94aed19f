"""The emulator's WSGI application: Twilio's Messages and Calls REST subset plus a control API."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import random
import re
import threading
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from .callbacks import Scheduler, WebhookSender
from .config import EmulatorConfig
from .control import ControlAPI
from .lifecycle import Lifecycle
from .resources import API_VERSION, call_resource, error_body, message_resource
from .store import Store

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ADDRESS_PREFIXES = ("client:", "sip:")  # call endpoints that are not phone numbers
_BODY_LIMIT = 1600


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json", headers=headers)


def twilio_error(code: int, message: str | None = None) -> Response:
    status, body = error_body(code, message)
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return _json(status, body, headers)


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as Twilio shows it: without the emulator's private keys."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


class EmulatorApp:
    """A WSGI callable holding the emulator's state: config, received records, background senders."""

    def __init__(self, config: EmulatorConfig):
        self.initial_config = config
        self.config = config
        self.generation = 0
        self.messages = Store(config.store_limit)
        self.calls = Store(config.store_limit)
        self.scheduler = Scheduler(config.callback_workers)
        self.sender = WebhookSender(self.scheduler, lambda: self.config.auth_token)
        self.lifecycle = Lifecycle(self.scheduler, self.sender, lambda: self.config, lambda: self.generation)
        self.control = ControlAPI(self)
        self._lock = threading.Lock()
        self._counts = {"messages_created": 0, "calls_created": 0, "rest_errors": 0, "injected_failures": 0}

    # -- state ---------------------------------------------------------------------------------

    def configure(self, changes: dict[str, Any]) -> EmulatorConfig:
        """Apply settings at run time (``reset: true`` first restores the start-up settings)."""
        changes = dict(changes)
        if changes.pop("reset", False):
            self.reset()
        with self._lock:
            self.config = self.config.updated(changes)
            self.messages.limit = self.calls.limit = self.config.store_limit
        return self.config

    def reset(self) -> None:
        """Forget every message and call, drop pending callbacks, restore the start-up settings."""
        with self._lock:
            self.generation += 1
            self.config = self.initial_config
            self.messages.clear()
            self.calls.clear()
            for key in self._counts:
                self._counts[key] = 0
        self.sender.reset_stats()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            stats: dict[str, Any] = dict(self._counts)
        stats.update(self.sender.stats)
        stats.update(pending_callbacks=self.scheduler.pending, dropped_callbacks=self.scheduler.dropped)
        return stats

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def close(self) -> None:
        self.scheduler.stop()
        self.sender.close()

    # -- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            request.get_data()  # always read the whole body: the connection may be reused
            response = self.dispatch(request)
        except Exception:  # the emulator answers like Twilio would rather than dropping the connection
            log.exception("emulator request failed: %s %s", request.method, request.path)
            response = twilio_error(20500)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if parts[0] == "_emulator":
            return self.control.dispatch(request, parts[1:])
        if len(parts) < 4 or parts[0] != API_VERSION or parts[1] != "Accounts":
            return twilio_error(20404, f"The requested resource {request.path} was not found")
        config = self.config
        if not self._authorised(request, config, parts[2]):
            return twilio_error(20003)
        resource = parts[3:]
        if resource == ["Messages.json"] and request.method == "POST":
            return self.create_message(request, config)
        if resource == ["Calls.json"] and request.method == "POST":
            return self.create_call(request, config)
        if len(resource) == 2 and resource[1].endswith(".json") and request.method == "GET":
            store = {"Messages": self.messages, "Calls": self.calls}.get(resource[0])
            record = store.get(resource[1][: -len(".json")]) if store is not None else None
            if record is not None:
                return _json(200, public(record))
        return twilio_error(20404, f"The requested resource {request.path} was not found")

    @staticmethod
    def _authorised(request: Request, config: EmulatorConfig, path_account: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            user == config.account_sid
            and path_account == config.account_sid
            and hmac.compare_digest(password.encode(), config.auth_token.encode())
        )

    def _injected_failure(self, config: EmulatorConfig) -> Response | None:
        """Latency, then maybe a transient failure, as configured; applies to every create."""
        if config.latency:
            time.sleep(config.latency)
        roll = random.random()
        if roll < config.error_429_rate:
            self.count("injected_failures")
            return twilio_error(20429)
        if roll < config.error_429_rate + config.failure_rate:
            self.count("injected_failures")
            return twilio_error(random.choice((20500, 20503)))
        return None

    def _refuse(self, code: int) -> Response:
        self.count("rest_errors")
        return twilio_error(code)

    def create_message(self, request: Request, config: EmulatorConfig) -> Response:
        failure = self._injected_failure(config)
        if failure is not None:
            return failure
        params = request.form.to_dict()
        to, from_ = params.get("To", ""), params.get("From")
        if not to:
            return self._refuse(21604)
        if not from_ and not params.get("MessagingServiceSid"):
            return self._refuse(21603)
        if not params.get("Body") and "MediaUrl" not in params and "ContentSid" not in params:
            return self._refuse(21602)
        if len(params.get("Body", "")) > _BODY_LIMIT:
            return self._refuse(21617)
        code = config.rest_error("message", to, from_)
        if code is None and not E164.match(to):
            code = 21211
        if code is None and from_ and not E164.match(from_) and not from_.isalnum():
            code = 21212
        if code is not None:
            return self._refuse(code)
        record = message_resource(config.account_sid, params)
        self._store_and_start(self.messages, record, params, request, config)
        self.count("messages_created")
        return _json(201, public(record))

    def create_call(self, request: Request, config: EmulatorConfig) -> Response:
        failure = self._injected_failure(config)
        if failure is not None:
            return failure
        params = request.form.to_dict()
        to, from_ = params.get("To", ""), params.get("From", "")
        if not to:
            return self._refuse(21201)
        if not from_:
            return self._refuse(21213)
        if not (params.get("Url") or params.get("Twiml") or params.get("ApplicationSid")):
            return self._refuse(21205)
        code = config.rest_error("call", to, from_)
        if code is None and not (E164.match(to) or to.startswith(_ADDRESS_PREFIXES)):
            code = 21211
        if code is None and not (E164.match(from_) or from_.startswith(_ADDRESS_PREFIXES)):
            code = 21212
        if code is not None:
            return self._refuse(code)
        record = call_resource(config.account_sid, params)
        self._store_and_start(self.calls, record, params, request, config)
        self.count("calls_created")
        return _json(201, public(record))

    def _store_and_start(
        self,
        store: Store,
        record: dict[str, Any],
        params: dict[str, str],
        request: Request,
        config: EmulatorConfig,
    ) -> None:
        stored = dict(
            record,
            _params=params,
            _events=request.form.getlist("StatusCallbackEvent"),
            _status_callback=params.get("StatusCallback"),
            _twiml=params.get("Twiml"),
        )
        store.add(stored)
        if store is self.messages:
            self.lifecycle.start_message(store, stored, config)
        else:
            self.lifecycle.start_call(store, stored, config)
