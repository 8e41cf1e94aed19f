"""Voice calls through the twilio adapter inside comms: placed through the SDK on the emulator, which
runs the TwiML and calls our signed call-status webhook back; the reports are pumped as workers do."""

from __future__ import annotations

import re
import threading
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from comms import create_app
from comms.carriers.emulator import start_in_thread
from comms.runtime import Runtime
from comms.services import apps, sweeper
from workers import runner

ACCOUNT_SID = "AC" + "c3" * 16
AUTH_TOKEN = "voice-auth-token"
CALLER_ID = "+15005550006"
TO = "+14155552671"
LIFECYCLE = ["queued", "initiated", "ringing", "in-progress", "completed"]


@pytest.fixture(scope="module")
def twilio_emulator():
    emulator = start_in_thread({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "delivery_delay": 0.05})
    yield emulator
    emulator.stop()


class Deployment:
    """comms with the twilio carrier on the emulator, served on a local port for the webhooks."""

    def __init__(self, runtime, emulator, url):
        self.runtime, self.emulator, self.url = runtime, emulator, url
        self.client = create_app(runtime=runtime).test_client()
        with runtime.db.session() as session:
            app, self.key = apps.create_app(session, "shop")
            app.allow_free_text = True
            app.voice = {"max_calls_per_minute": 0}

    def post(self, path, body=None):
        return self.client.post(path, json=body, headers={"Authorization": f"Bearer {self.key}"})

    def get(self, path, **kw):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.key}"}, **kw)

    def signed_post(self, path, form, token=AUTH_TOKEN, query=""):
        url = f"{self.url}{path}{query}"
        signature = RequestValidator(token).compute_signature(url, form)
        return self.client.post(
            path + query, data=form, headers={"X-Twilio-Signature": signature}, base_url=self.url
        )

    def work(self):
        runner.make_worker(self.runtime).work(burst=True, with_scheduler=True, logging_level="WARNING")

    def wait_status(self, call_id, wanted, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.get(f"/v1/calls/{call_id}").json
            if found["status"] == wanted:
                return found
            time.sleep(0.05)
        raise AssertionError(f"the call stayed {found['status']}: {found['events']}")


@pytest.fixture
def deployment(make_settings, twilio_emulator, runtime):
    twilio_emulator.reset()
    holder = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    settings = make_settings(
        carriers={
            "twilio": {
                "type": "twilio",
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "from": CALLER_ID,
                "api_base_url": twilio_emulator.base_url,
                "webhook_base_url": url,
                "cps": 50,  # Twilio's default of 1 a second would only slow the tests down
            }
        },
        routes=({"prefix": "", "carrier": "twilio"},),
    )
    rt = Runtime(settings)
    holder["app"] = create_app(runtime=rt)
    pump = runner.Sweeper(rt, 0.05)  # applies the webhook reports the API stored, as workers do
    pump.start()
    yield Deployment(rt, twilio_emulator, url)
    pump.stop()
    pump.join(5)
    server.shutdown()
    rt.close()


def say_of(received: dict) -> ET.Element:
    """The one <Say> of the TwiML the emulator was given."""
    root = ET.fromstring(received["twiml"])
    assert root.tag == "Response" and [child.tag for child in root] == ["Say"]
    return root[0]


def test_a_call_completes_with_a_duration_and_reads_the_twiml_we_meant(deployment):
    tpl = deployment.post(
        "/v1/templates",
        {
            "name": "door",
            "kind": "notification",
            "channel": "voice",
            "body": "Parcel {{order}} & co.",
            "locale": "en-gb",
        },
    ).json
    from comms.models import Template

    with deployment.runtime.db.session() as session:
        session.get(Template, tpl["id"]).status = "approved"
    r = deployment.post(
        "/v1/calls",
        {"to": TO, "template_id": tpl["id"], "params": {"order": "A<1>"}, "voice": "Polly.Amy", "repeat": 3},
    )
    assert r.status_code == 202, r.json
    deployment.work()
    c = deployment.wait_status(r.json["id"], "completed")
    assert [e["status"] for e in c["events"]] == LIFECYCLE
    assert c["duration"] == 7  # the emulator's default call length, in seconds
    assert c["carrier"] == "twilio" and c["carrier_call_id"].startswith("CA")

    (received,) = deployment.emulator.calls(to=TO)
    assert received["request"]["From"] == CALLER_ID and received["sid"] == c["carrier_call_id"]
    say = say_of(received)
    assert say.attrib == {"voice": "Polly.Amy", "language": "en-GB", "loop": "3"}
    assert say.text == "Parcel A<1> & co."  # escaped in the XML, read as written
    assert "MachineDetection" not in received["request"]
    callback = received["request"]["StatusCallback"]
    assert callback == f"{deployment.url}/webhooks/twilio/call-status?{urlencode({'reference': c['id']})}"


@pytest.mark.parametrize(
    ("to", "told", "ending"),
    [
        ("+15005550021", None, "busy"),
        ("+15005550022", None, "no-answer"),
        ("+14155550190", {"status": "busy"}, "busy"),  # the emulator told that a number is busy
        ("+14155550191", {"status": "no-answer"}, "no-answer"),
    ],
)
def test_busy_and_no_answer_end_with_that_status(deployment, to, told, ending):
    if told:
        deployment.emulator.configure(numbers={to: told})
    r = deployment.post("/v1/calls", {"to": to, "text": "Your parcel is here"})
    deployment.work()
    c = deployment.wait_status(r.json["id"], ending)
    assert c["duration"] == 0
    assert [e["status"] for e in c["events"]] == ["queued", "initiated", "ringing", ending]


def test_language_and_answering_machine_detection_reach_twilio(deployment):
    r = deployment.post(
        "/v1/calls",
        {"to": TO, "text": "您的包裹到了", "language": "zh-cn", "machine_detection": "DetectMessageEnd"},
    )
    deployment.work()
    deployment.wait_status(r.json["id"], "completed")
    (received,) = deployment.emulator.calls(to=TO)
    assert received["request"]["MachineDetection"] == "DetectMessageEnd"
    say = say_of(received)
    assert (say.get("language"), say.get("loop"), say.text) == ("zh-CN", "1", "您的包裹到了")
    assert "voice" not in say.attrib  # none asked for: Twilio's default voice


def test_a_refused_number_fails_with_twilios_code(deployment):
    r = deployment.post("/v1/calls", {"to": "+15005550002", "text": "x"})  # 21214: cannot be reached
    deployment.work()
    c = deployment.get(f"/v1/calls/{r.json['id']}").json
    assert (c["status"], c["error"], c["error_code"]) == ("failed", "invalid_phone_number", "21214")


def _progress(sid, status, **extra):
    return {
        "CallSid": sid,
        "CallStatus": status,
        "AccountSid": ACCOUNT_SID,
        "To": TO,
        "From": CALLER_ID,
        **extra,
    }


def test_forged_call_status_webhooks_are_refused_and_duplicates_are_harmless(deployment):
    r = deployment.post("/v1/calls", {"to": TO, "text": "x"})
    call_id = r.json["id"]
    query = "?" + urlencode({"reference": call_id})
    sid = "CA" + "1" * 32
    form = _progress(sid, "completed", CallDuration="9")
    unsigned = deployment.client.post(
        "/webhooks/twilio/call-status" + query, data=form, base_url=deployment.url
    )
    assert (unsigned.status_code, unsigned.json["error"]) == (403, "invalid_signature")
    forged = deployment.signed_post("/webhooks/twilio/call-status", form, token="not-the-token", query=query)
    assert forged.status_code == 403
    sweeper.pump_reports(deployment.runtime)
    assert deployment.get(f"/v1/calls/{call_id}").json["status"] == "queued"

    for status, extra in [
        ("ringing", {}),
        ("completed", {"CallDuration": "9"}),
        ("ringing", {}),
        ("in-progress", {}),
        ("completed", {"CallDuration": "9"}),
        ("busy", {"CallDuration": "0"}),
    ]:
        response = deployment.signed_post(
            "/webhooks/twilio/call-status", _progress(sid, status, **extra), query=query
        )
        assert response.status_code == 204
    bad = deployment.signed_post("/webhooks/twilio/call-status", _progress(sid, "exploded"), query=query)
    assert (bad.status_code, bad.json["error"]) == (400, "validation_error")
    sweeper.pump_reports(deployment.runtime)
    c = deployment.get(f"/v1/calls/{call_id}").json
    assert (c["status"], c["duration"], c["carrier_call_id"]) == ("completed", 9, sid)
    statuses = [e["status"] for e in c["events"]]
    assert statuses == ["queued", "ringing", "completed", "in-progress", "busy"]  # late ones: events only


def test_a_callback_found_by_the_call_sid_alone(deployment):
    r = deployment.post("/v1/calls", {"to": TO, "text": "x"})
    deployment.work()
    c = deployment.wait_status(r.json["id"], "completed")
    again = deployment.signed_post(
        "/webhooks/twilio/call-status", _progress(c["carrier_call_id"], "completed")
    )
    assert again.status_code == 204
    sweeper.pump_reports(deployment.runtime)
    after = deployment.get(f"/v1/calls/{r.json['id']}").json
    assert [e["status"] for e in after["events"]].count("completed") == 1


def test_a_voice_login_code_is_read_twice_and_approves(deployment):
    started = deployment.post("/v1/verifications", {"to": TO, "channel": "voice"})
    assert started.status_code == 201, started.json
    assert started.json["channel"] == "voice"
    deployment.work()
    (received,) = deployment.emulator.calls(to=TO)
    spoken = say_of(received).text
    digits = re.findall(r"\d", spoken)
    assert len(digits) == 12 and digits[:6] == digits[6:]  # the code, digit by digit, twice
    assert re.search(r"(\d, ){5}\d", spoken)  # commas: a pause between digits
    code = "".join(digits[:6])
    (stored,) = deployment.get("/v1/calls").json["data"]
    assert stored["purpose"] == "verification" and not re.search(r"\d", stored["text"])  # redacted
    checked = deployment.post("/v1/verifications/check", {"to": TO, "code": code})
    assert (checked.status_code, checked.json["status"], checked.json["valid"]) == (200, "approved", True)
