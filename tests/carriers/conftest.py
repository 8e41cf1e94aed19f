"""Fixtures for carrier tests: a Twilio emulator in a thread and a local form-webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from comms import create_app
from comms.carriers.emulator import EmulatorThread, start_in_thread
from comms.runtime import Runtime
from workers import runner

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "test-auth-token-0123456789"


@pytest.fixture(scope="module")
def _emulator_server() -> Iterator[EmulatorThread]:
    emulator = start_in_thread({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})
    yield emulator
    emulator.stop()


@pytest.fixture
def emulator(_emulator_server: EmulatorThread) -> EmulatorThread:
    """The module's emulator, reset to its start-up settings with nothing received."""
    _emulator_server.reset()
    return _emulator_server


class FormReceiver:
    """A local server recording form-encoded webhooks (as Twilio sends them) and answering TwiML."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.reply = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>hello</Say></Response>'
        self.fail_first = 0  # answer 500 to this many requests first
        self._cond = threading.Condition()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    @Request.application
    def _app(self, request: Request) -> Response:
        status = 200
        with self._cond:
            if self.fail_first:
                self.fail_first -= 1
                status = 500
            self.requests.append(
                {
                    "url": request.url,
                    "path": request.path,
                    "args": request.args.to_dict(),
                    "form": request.form.to_dict(),
                    "headers": dict(request.headers),
                    "answered": status,
                    "at": time.monotonic(),
                }
            )
            self._cond.notify_all()
        return Response(self.reply if status == 200 else "no", status=status, mimetype="text/xml")

    def wait_for(self, count: int, timeout: float = 5.0, answered: int | None = 200) -> list[dict]:
        """The first ``count`` requests (answered ``answered``), waiting up to ``timeout`` for them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.requests if answered is None or r["answered"] == answered]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} webhooks, got {len(found)}: {found}")
                self._cond.wait(left)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[FormReceiver]:
    receiver = FormReceiver()
    yield receiver
    receiver.stop()


class ServedComms:
    """comms configured with the twilio carrier against an emulator, served on a local port so the
    emulator can call its webhooks, with a sweeper thread applying the reports as workers do."""

    def __init__(self, make_settings, emulator, account_sid: str, auth_token: str, sender: str):
        holder = {}
        # The server starts first (the carrier config needs its URL); requests wait for the app.
        self.server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        settings = make_settings(
            carriers={
                "twilio": {
                    "type": "twilio",
                    "account_sid": account_sid,
                    "auth_token": auth_token,
                    "from": sender,
                    "api_base_url": emulator.base_url,
                    "webhook_base_url": self.url,
                }
            },
            routes=({"prefix": "", "carrier": "twilio", "priority": 1},),
        )
        self.runtime = Runtime(settings)
        holder["app"] = create_app(runtime=self.runtime)
        self.pump = runner.Sweeper(self.runtime, 0.05)
        self.pump.start()

    def stop(self) -> None:
        self.pump.stop()
        self.pump.join(5)
        self.server.shutdown()
        self.runtime.close()


@pytest.fixture
def serve_comms(make_settings) -> Iterator:
    """``serve_comms(emulator, account_sid, auth_token, sender) -> ServedComms``, stopped afterwards."""
    started: list[ServedComms] = []

    def start(emulator, account_sid: str, auth_token: str, sender: str) -> ServedComms:
        started.append(ServedComms(make_settings, emulator, account_sid, auth_token, sender))
        return started[-1]

    yield start
    for served in started:
        served.stop()
