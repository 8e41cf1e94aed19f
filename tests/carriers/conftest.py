"""Fixtures for carrier tests: a Twilio emulator in a thread and a local form-webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from comms.carriers.emulator import EmulatorThread, start_in_thread

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
            self.requests.append({
                "url": request.url,
                "path": request.path,
                "args": request.args.to_dict(),
                "form": request.form.to_dict(),
                "headers": dict(request.headers),
                "answered": status,
                "at": time.monotonic(),
            })
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
