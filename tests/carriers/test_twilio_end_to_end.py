"""The twilio adapter inside comms: sends through the SDK to the emulator, which calls our signed
webhooks back; forged webhooks are refused; STOP blocks further sends until START."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from comms import create_app
from comms.carriers.emulator import start_in_thread
from comms.runtime import Runtime
from comms.services import apps, sweeper
from workers import runner

ACCOUNT_SID = "AC" + "b2" * 16
AUTH_TOKEN = "e2e-auth-token"
SENDER = "+15005550006"
TO = "+14155552671"


@pytest.fixture(scope="module")
def twilio_emulator():
    emulator = start_in_thread({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "delivery_delay": 0.05})
    yield emulator
    emulator.stop()


class Deployment:
    """comms configured with the twilio carrier against the emulator, served on a local port."""

    def __init__(self, runtime, server, emulator):
        self.runtime, self.server, self.emulator = runtime, server, emulator
        self.client = create_app(runtime=runtime).test_client()
        with runtime.db.session() as session:
            app, self.key = apps.create_app(session, "shop")
            app.allow_free_text = True
        self.app_id = app.id

    def post(self, path, body=None, **kw):
        return self.client.post(path, json=body, headers={"Authorization": f"Bearer {self.key}"}, **kw)

    def get(self, path, **kw):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.key}"}, **kw)

    def signed_post(self, path, form, token=AUTH_TOKEN, query=""):
        url = f"{self.server.url}{path}{query}"
        signature = RequestValidator(token).compute_signature(url, form)
        return self.client.post(
            path + query, data=form, headers={"X-Twilio-Signature": signature}, base_url=self.server.url
        )


@pytest.fixture
def deployment(serve_comms, twilio_emulator, runtime):
    twilio_emulator.reset()
    served = serve_comms(twilio_emulator, ACCOUNT_SID, AUTH_TOKEN, SENDER)
    return Deployment(served.runtime, served, twilio_emulator)


def wait_status(deployment, message_id, wanted, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = deployment.get(f"/v1/messages/{message_id}").json
        if message["status"] == wanted:
            return message
        time.sleep(0.05)
    raise AssertionError(f"message stayed {message['status']}: {message['events']}")


def drain(rt):
    runner.make_worker(rt).work(burst=True, with_scheduler=True, logging_level="WARNING")


def test_a_message_goes_through_the_sdk_and_the_signed_callbacks_mark_it_delivered(deployment):
    r = deployment.post("/v1/messages", {"to": TO, "body": "through twilio"})
    drain(deployment.runtime)
    message = wait_status(deployment, r.json["id"], "delivered")
    assert message["carrier"] == "twilio" and message["carrier_message_id"].startswith("SM")
    assert [e["status"] for e in message["events"]] == ["queued", "sending", "sent", "delivered"]
    received = deployment.emulator.messages(to=TO)
    assert len(received) == 1 and received[0]["body"] == "through twilio"


def test_twilio_errors_end_the_message_with_the_code(deployment):
    r = deployment.post("/v1/messages", {"to": "+15005550009", "body": "landline"})
    drain(deployment.runtime)
    message = deployment.get(f"/v1/messages/{r.json['id']}").json
    assert (message["status"], message["error"], message["error_code"]) == (
        "failed",
        "not_a_mobile_number",
        "21614",
    )


def _status_form(sid, status, to=TO):
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "AccountSid": ACCOUNT_SID,
        "To": to,
        "From": SENDER,
    }


def test_forged_and_unsigned_webhooks_are_refused_and_change_nothing(deployment):
    r = deployment.post("/v1/messages", {"to": TO, "body": "x"})
    query = "?" + urlencode({"reference": r.json["id"]})
    form = _status_form("SM" + "0" * 32, "delivered")
    unsigned = deployment.client.post(
        "/webhooks/twilio/message-status" + query, data=form, base_url=deployment.server.url
    )
    assert (unsigned.status_code, unsigned.json["error"]) == (403, "invalid_signature")
    forged = deployment.signed_post(
        "/webhooks/twilio/message-status", form, token="not-the-token", query=query
    )
    assert forged.status_code == 403
    tampered_url = deployment.signed_post(
        "/webhooks/twilio/message-status", form, query="?reference=msg_other"
    )
    assert tampered_url.status_code == 204  # signed as sent: matches no message, changes nothing
    sweeper.pump_reports(deployment.runtime)
    assert deployment.get(f"/v1/messages/{r.json['id']}").json["status"] == "queued"


def test_duplicate_and_out_of_order_callbacks_are_harmless(deployment):
    r = deployment.post("/v1/messages", {"to": TO, "body": "x"})
    query = "?" + urlencode({"reference": r.json["id"]})
    sid = "SM" + "1" * 32
    for status in ("delivered", "delivered", "sent", "delivered", "undelivered"):
        response = deployment.signed_post(
            "/webhooks/twilio/message-status", _status_form(sid, status), query=query
        )
        assert response.status_code == 204
    sweeper.pump_reports(deployment.runtime)
    message = deployment.get(f"/v1/messages/{r.json['id']}").json
    assert message["status"] == "delivered"
    statuses = [e["status"] for e in message["events"]]
    assert statuses.count("delivered") == 1 and statuses.count("sent") == 1
    assert message["carrier_message_id"] == sid


def test_a_callback_found_by_the_carrier_sid_alone(deployment):
    r = deployment.post("/v1/messages", {"to": TO, "body": "x"})
    drain(deployment.runtime)
    message = wait_status(deployment, r.json["id"], "delivered")
    form = _status_form(message["carrier_message_id"], "delivered")
    assert deployment.signed_post("/webhooks/twilio/message-status", form).status_code == 204
    sweeper.pump_reports(deployment.runtime)
    again = deployment.get(f"/v1/messages/{r.json['id']}").json
    assert [e["status"] for e in again["events"]].count("delivered") == 1


def test_stop_blocks_sends_until_start(deployment):
    deployment.post("/v1/messages", {"to": TO, "body": "promo"})
    inbound = {
        "MessageSid": "SM" + "2" * 32,
        "From": TO,
        "To": SENDER,
        "Body": " stop ",
        "AccountSid": ACCOUNT_SID,
    }
    reply = deployment.signed_post("/webhooks/twilio/sms", inbound)
    assert reply.status_code == 200 and b"<Response" in reply.data
    refused = deployment.post("/v1/messages", {"to": TO, "body": "more promo"})
    assert (refused.status_code, refused.json["error"]) == (400, "recipient_opted_out")
    tpl = deployment.post("/v1/templates", {"name": "n", "kind": "notification", "body": "Hi"}).json
    with deployment.runtime.db.session() as session:
        from comms.models import Template

        session.get(Template, tpl["id"]).status = "approved"
    batch = deployment.post(
        "/v1/messages/batch", {"template_id": tpl["id"], "messages": [{"to": TO}, {"to": "+14155552672"}]}
    ).json
    assert batch["accepted"] == 1 and batch["rejected"] == [
        {"index": 0, "error": "recipient_opted_out", "message": batch["rejected"][0]["message"]}
    ]
    deployment.signed_post("/webhooks/twilio/sms", {**inbound, "Body": "START"})
    assert deployment.post("/v1/messages", {"to": TO, "body": "welcome back"}).status_code == 202


def test_proxied_webhooks_verify_against_the_public_url(make_settings, twilio_emulator):
    rt = Runtime(
        make_settings(
            trusted_proxies=1,
            carriers={
                "twilio": {
                    "type": "twilio",
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "from": SENDER,
                    "api_base_url": twilio_emulator.base_url,
                }
            },
            routes=({"prefix": "", "carrier": "twilio"},),
        )
    )
    client = create_app(runtime=rt).test_client()
    public = "https://comms.example.com/webhooks/twilio/sms"
    form = {"From": TO, "To": SENDER, "Body": "hello", "AccountSid": ACCOUNT_SID}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(public, form)
    headers = {
        "X-Twilio-Signature": signature,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "comms.example.com",
    }
    assert client.post("/webhooks/twilio/sms", data=form, headers=headers).status_code == 200
    bare = {"X-Twilio-Signature": signature}
    assert client.post("/webhooks/twilio/sms", data=form, headers=bare).status_code == 403
    rt.close()
