"""Masked numbers on the twilio adapter: inbound calls bridged with TwiML, texts relayed through the
message pipeline, interactions logged; every webhook signed with the SDK's RequestValidator."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select, update
from twilio.request_validator import RequestValidator

from comms import create_app
from comms.carriers.emulator import start_in_thread
from comms.models import Binding, BindingParty, Interaction, Message
from comms.services import apps, bindings, callbacks, inbound
from workers import runner

ACCOUNT_SID = "AC" + "c3" * 16
AUTH_TOKEN = "proxy-auth-token"
SENDER = "+15005550006"
PROXY = "+12025551000"
COURIER = "+14155550101"
CUSTOMER = "+14155550102"
STRANGER = "+14155550199"


@pytest.fixture(scope="module")
def twilio_emulator():
    emulator = start_in_thread({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "delivery_delay": 0.05})
    yield emulator
    emulator.stop()


class Deployment:
    def __init__(self, runtime, server, emulator, status_callback):
        self.runtime, self.server, self.emulator = runtime, server, emulator
        self.client = create_app(runtime=runtime).test_client()
        with runtime.db.session() as session:
            app, self.key = apps.create_app(session, "dispatch")
            app.status_callback = status_callback
            _, self.admin_key = apps.create_app(session, "ops", admin=True)
        self.app_id = app.id
        r = self.client.post(
            "/v1/numbers",
            json={"number": PROXY, "carrier": "twilio"},
            headers={"Authorization": f"Bearer {self.admin_key}"},
        )
        assert r.status_code == 201, r.json

    def api(self, method, path, body=None):
        return self.client.open(
            path, method=method, json=body, headers={"Authorization": f"Bearer {self.key}"}
        )

    def bind(self, a=COURIER, b=CUSTOMER, **extra) -> dict:
        r = self.api("POST", "/v1/bindings", {"party_a": a, "party_b": b, **extra})
        assert r.status_code == 201, r.json
        return r.json

    def signed_post(self, path, form, token=AUTH_TOKEN):
        """POST a form as Twilio would: X-Twilio-Signature over the full URL (query included) and form."""
        url = path if path.startswith("http") else f"{self.server.url}{path}"
        signature = RequestValidator(token).compute_signature(url, form)
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.client.post(
            target, data=form, headers={"X-Twilio-Signature": signature}, base_url=self.server.url
        )

    def call(self, caller, to=PROXY, sid=None, token=AUTH_TOKEN):
        form = {
            "CallSid": sid or f"CA{time.monotonic_ns():032x}"[:34],
            "AccountSid": ACCOUNT_SID,
            "From": caller,
            "To": to,
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        return self.signed_post("/webhooks/twilio/voice", form, token=token)

    def interactions(self, binding_id) -> list[dict]:
        r = self.api("GET", f"/v1/bindings/{binding_id}/interactions")
        assert r.status_code == 200, r.json
        return r.json["data"]


@pytest.fixture
def deployment(serve_comms, twilio_emulator, runtime, receiver):
    twilio_emulator.reset()
    served = serve_comms(twilio_emulator, ACCOUNT_SID, AUTH_TOKEN, SENDER)
    return Deployment(served.runtime, served, twilio_emulator, receiver.url)


def dial_of(response) -> ET.Element | None:
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/xml"
    return ET.fromstring(response.data).find("Dial")


def assert_refused(response) -> None:
    root = ET.fromstring(response.data)
    assert response.status_code == 200
    assert [child.tag for child in root] == ["Say", "Hangup"] and root.find("Say").text


def age(runtime, binding_id) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    with runtime.db.session() as session:
        session.execute(update(Binding).where(Binding.id == binding_id).values(expires_at=past))
        session.execute(
            update(BindingParty).where(BindingParty.binding_id == binding_id).values(expires_at=past)
        )


def interaction_count(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(Interaction))


# -- calls ----------------------------------------------------------------------------------


def test_a_calling_x_dials_b_showing_x_and_b_calling_x_dials_a(deployment):
    b = deployment.bind()
    dial = dial_of(deployment.call(COURIER))
    assert dial.get("callerId") == PROXY and dial.get("answerOnBridge") == "true"
    assert dial.get("record") is None
    assert [n.text for n in dial.findall("Number")] == [CUSTOMER]
    number = dial.find("Number")
    assert number.get("statusCallbackEvent") == "initiated ringing answered completed"
    assert number.get("statusCallback") == dial.get("action")
    assert dial.get("action").startswith(deployment.server.url + "/webhooks/twilio/proxy-call-status?")

    back = dial_of(deployment.call(CUSTOMER))
    assert back.get("callerId") == PROXY and [n.text for n in back.findall("Number")] == [COURIER]
    logged = deployment.interactions(b["id"])
    assert [(i["kind"], i["direction"], i["from"], i["to"], i["status"]) for i in logged] == [
        ("call", "a_to_b", COURIER, CUSTOMER, "initiated"),
        ("call", "b_to_a", CUSTOMER, COURIER, "initiated"),
    ]
    assert all(i["proxy_number"] == PROXY and i["created_at"] for i in logged)


def test_a_stranger_is_refused_and_nothing_is_logged(deployment):
    deployment.bind()
    assert_refused(deployment.call(STRANGER))
    assert_refused(deployment.call(COURIER, to="+12025551999"))  # a party, but not on that number
    assert interaction_count(deployment.runtime) == 0


def test_after_expiry_both_parties_are_refused(deployment):
    b = deployment.bind()
    assert dial_of(deployment.call(COURIER)) is not None
    age(deployment.runtime, b["id"])  # expired, not yet marked: lookups refuse at once
    assert_refused(deployment.call(COURIER))
    assert_refused(deployment.call(CUSTOMER))
    assert bindings.expire_due(deployment.runtime) == 1
    assert_refused(deployment.call(COURIER))
    assert_refused(deployment.call(CUSTOMER))
    assert len(deployment.interactions(b["id"])) == 1


def test_after_release_both_parties_are_refused(deployment):
    b = deployment.bind()
    assert deployment.api("DELETE", f"/v1/bindings/{b['id']}").json["status"] == "released"
    assert_refused(deployment.call(COURIER))
    assert_refused(deployment.call(CUSTOMER))


def test_a_swapped_party_is_reached_instead(deployment):
    b = deployment.bind()
    deployment.api("PATCH", f"/v1/bindings/{b['id']}", {"party_b": STRANGER})
    assert [n.text for n in dial_of(deployment.call(COURIER)).findall("Number")] == [STRANGER]
    assert_refused(deployment.call(CUSTOMER))


def test_recorded_bindings_record_from_answer(deployment):
    deployment.bind(record=True)
    dial = dial_of(deployment.call(COURIER))
    assert dial.get("record") == "record-from-answer"
    assert dial.get("recordingStatusCallback") == dial.get("action")


def test_forged_or_unsigned_webhooks_are_403_and_change_nothing(deployment):
    b = deployment.bind()
    forged = deployment.call(COURIER, token="not-the-token")
    assert (forged.status_code, forged.json["error"]) == (403, "invalid_signature")
    unsigned = deployment.client.post(
        "/webhooks/twilio/voice",
        data={"From": COURIER, "To": PROXY, "CallSid": "CA1"},
        base_url=deployment.server.url,
    )
    assert unsigned.status_code == 403
    text = {
        "MessageSid": "SM" + "9" * 32,
        "From": COURIER,
        "To": PROXY,
        "Body": "hi",
        "AccountSid": ACCOUNT_SID,
    }
    assert deployment.signed_post("/webhooks/twilio/sms", text, token="wrong").status_code == 403
    status = deployment.signed_post(
        "/webhooks/twilio/proxy-call-status?interaction=itx_x", {"CallStatus": "completed"}, token="wrong"
    )
    assert status.status_code == 403
    assert interaction_count(deployment.runtime) == 0
    with deployment.runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    assert deployment.interactions(b["id"]) == []


def test_call_progress_is_logged_forward_only_with_duration_and_recording(deployment):
    b = deployment.bind(record=True)
    inbound_sid = "CA" + "1" * 32
    dial = dial_of(deployment.call(COURIER, sid=inbound_sid))
    progress = dial.get("action")
    interaction_id = parse_qs(urlsplit(progress).query)["interaction"][0]
    child = {"CallSid": "CA" + "2" * 32, "ParentCallSid": inbound_sid, "AccountSid": ACCOUNT_SID}
    for status in ("initiated", "ringing", "in-progress"):
        assert deployment.signed_post(progress, {**child, "CallStatus": status}).status_code == 200
    (logged,) = deployment.interactions(b["id"])
    assert (logged["status"], logged["answered_at"] is not None, logged["ended_at"]) == (
        "in-progress",
        True,
        None,
    )
    assert (
        deployment.signed_post(
            progress, {**child, "CallStatus": "completed", "CallDuration": "42"}
        ).status_code
        == 200
    )
    # <Dial action> once the bridged leg ends: it must answer TwiML (ending the call).
    action = deployment.signed_post(
        progress,
        {
            "CallSid": inbound_sid,
            "DialCallSid": child["CallSid"],
            "DialCallStatus": "completed",
            "DialCallDuration": "42",
            "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1",
        },
    )
    assert action.status_code == 200 and ET.fromstring(action.data).tag == "Response"
    # Late and repeated news changes nothing.
    deployment.signed_post(progress, {**child, "CallStatus": "ringing"})
    deployment.signed_post(progress, {**child, "CallStatus": "completed", "CallDuration": "42"})
    (logged,) = deployment.interactions(b["id"])
    assert logged["id"] == interaction_id
    assert (logged["status"], logged["duration"]) == ("completed", 42)
    assert logged["recording_url"].endswith("/Recordings/RE1")
    assert logged["ended_at"] >= logged["answered_at"] >= logged["created_at"]


@pytest.mark.parametrize(
    ("dial_status", "shown"), [("busy", "busy"), ("no-answer", "no-answer"), ("failed", "failed")]
)
def test_an_unanswered_call_ends_with_the_dial_status(deployment, dial_status, shown):
    b = deployment.bind()
    progress = dial_of(deployment.call(CUSTOMER)).get("action")
    deployment.signed_post(progress, {"DialCallStatus": dial_status, "DialCallSid": "CA" + "3" * 32})
    (logged,) = deployment.interactions(b["id"])
    assert (logged["status"], logged["duration"], logged["direction"]) == (shown, None, "b_to_a")


def test_a_repeated_voice_webhook_logs_one_interaction(deployment):
    b = deployment.bind()
    first = dial_of(deployment.call(COURIER, sid="CA" + "4" * 32))
    again = dial_of(deployment.call(COURIER, sid="CA" + "4" * 32))
    assert first.get("action") == again.get("action")
    assert len(deployment.interactions(b["id"])) == 1


# -- texts ----------------------------------------------------------------------------------


def drain(rt) -> None:
    runner.make_worker(rt).work(burst=True, with_scheduler=True, logging_level="WARNING")


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_relayed_text_is_delivered_through_the_pipeline(deployment, receiver):
    b = deployment.bind()
    text = {
        "MessageSid": "SM" + "5" * 32,
        "From": CUSTOMER,
        "To": PROXY,
        "Body": "Gate code 1234",
        "AccountSid": ACCOUNT_SID,
    }
    reply = deployment.signed_post("/webhooks/twilio/sms", text)
    assert reply.status_code == 200 and b"<Response" in reply.data
    drain(deployment.runtime)
    sent = wait_for(lambda: deployment.emulator.messages(to=COURIER))
    assert [(m["from"], m["to"], m["body"]) for m in sent] == [(PROXY, COURIER, "Gate code 1234")]
    (logged,) = deployment.interactions(b["id"])
    assert (logged["kind"], logged["direction"], logged["from"], logged["to"]) == (
        "sms",
        "b_to_a",
        CUSTOMER,
        COURIER,
    )

    def delivered():
        (row,) = deployment.interactions(b["id"])
        return row if row["status"] == "delivered" else None

    logged = wait_for(delivered)
    message = deployment.api("GET", f"/v1/messages/{logged['message_id']}").json
    assert message["carrier"] == "twilio" and message["from"] == PROXY and message["client_ref"] == b["id"]
    # (The carrier's report may overtake the worker's own "sent": then "sent" is late news, an event only.)
    assert sorted(e["status"] for e in message["events"]) == ["delivered", "queued", "sending", "sent"]

    # The app's status callback hears about the relay like any of its messages.
    def called_back():
        drain(deployment.runtime)  # status callbacks are jobs on the callbacks queue
        return any(r["json"]["status"] == "delivered" for r in receiver.requests)

    wait_for(called_back)
    heard = [r["json"]["status"] for r in receiver.requests]
    assert {"sending", "delivered"} <= set(heard) <= {"sending", "sent", "delivered"}
    assert len(heard) == len(set(heard))
    for r in receiver.requests:
        assert r["json"]["id"] == logged["message_id"]
        assert callbacks.verify(_secret(deployment), r["raw"], r["headers"]["Comms-Signature"])


def _secret(deployment) -> str:
    from comms.models import App

    with deployment.runtime.db.session() as session:
        return session.get(App, deployment.app_id).webhook_secret


def test_a_text_from_a_stranger_is_not_relayed_and_stop_still_opts_out(deployment):
    deployment.bind()
    text = {
        "MessageSid": "SM" + "6" * 32,
        "From": STRANGER,
        "To": PROXY,
        "Body": "hello?",
        "AccountSid": ACCOUNT_SID,
    }
    assert deployment.signed_post("/webhooks/twilio/sms", text).status_code == 200
    stop = {**text, "MessageSid": "SM" + "7" * 32, "To": SENDER, "Body": "STOP"}
    assert deployment.signed_post("/webhooks/twilio/sms", stop).status_code == 200
    with deployment.runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    assert interaction_count(deployment.runtime) == 0


def test_a_party_texting_an_expired_binding_is_not_relayed(deployment):
    b = deployment.bind()
    age(deployment.runtime, b["id"])
    text = {
        "MessageSid": "SM" + "8" * 32,
        "From": COURIER,
        "To": PROXY,
        "Body": "here",
        "AccountSid": ACCOUNT_SID,
    }
    assert deployment.signed_post("/webhooks/twilio/sms", text).status_code == 200
    assert interaction_count(deployment.runtime) == 0


def test_the_same_text_is_relayed_once(deployment):
    b = deployment.bind()
    carrier = deployment.runtime.carriers["twilio"]
    for _ in range(2):
        assert (
            inbound.handle_sms(deployment.runtime, carrier, COURIER, PROXY, "on my way", sid="SM" + "a" * 32)
            == "relay"
        )
    (logged,) = deployment.interactions(b["id"])
    assert (logged["direction"], logged["to"]) == ("a_to_b", CUSTOMER)
    with deployment.runtime.db.session() as session:
        assert (
            session.scalar(select(func.count()).select_from(Message).where(Message.purpose == "relay")) == 1
        )


# -- the emulator plays inbound traffic ----------------------------------------------------


def test_the_emulator_plays_an_inbound_call_and_text_to_a_proxy_number(deployment):
    deployment.bind()
    played = requests.post(
        f"{deployment.emulator.base_url}/_emulator/inbound/call",
        json={"from": COURIER, "to": PROXY, "url": f"{deployment.server.url}/webhooks/twilio/voice"},
        timeout=10,
    ).json()
    assert played["status"] == 200
    dial = ET.fromstring(played["body"]).find("Dial")
    assert dial.get("callerId") == PROXY and dial.find("Number").text == CUSTOMER
    texted = requests.post(
        f"{deployment.emulator.base_url}/_emulator/inbound/sms",
        json={
            "from": CUSTOMER,
            "to": PROXY,
            "body": "ring the bell",
            "url": f"{deployment.server.url}/webhooks/twilio/sms",
        },
        timeout=10,
    ).json()
    assert texted["status"] == 200
    drain(deployment.runtime)
    sent = wait_for(lambda: deployment.emulator.messages(to=COURIER))
    assert (sent[0]["from"], sent[0]["body"]) == (PROXY, "ring the bell")
