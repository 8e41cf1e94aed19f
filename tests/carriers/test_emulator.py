"""The Twilio emulator: REST subset, magic numbers, runtime settings, signed callbacks, inbound simulation."""

from __future__ import annotations

import time

import pytest
import requests
from twilio.base import deserialize
from twilio.request_validator import RequestValidator

from comms.carriers.emulator import EmulatorConfig, start_in_thread

# The same credentials as the emulator fixture in conftest.py.
ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "test-auth-token-0123456789"
AUTH = (ACCOUNT_SID, AUTH_TOKEN)
TO = "+14155550100"
FROM = "+15005550006"


def messages_url(emulator) -> str:
    return f"{emulator.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def calls_url(emulator) -> str:
    return f"{emulator.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


def send(emulator, auth=AUTH, **form) -> requests.Response:
    data = {"To": TO, "From": FROM, "Body": "hello", **form}
    return requests.post(messages_url(emulator), data={k: v for k, v in data.items() if v is not None},
                         auth=auth, timeout=5)


def call(emulator, **form) -> requests.Response:
    data = {"To": TO, "From": FROM, "Twiml": "<Response><Say>hi</Say></Response>", **form}
    return requests.post(calls_url(emulator), data={k: v for k, v in data.items() if v is not None},
                         auth=AUTH, timeout=5)


def assert_signed(hook: dict) -> None:
    signature = hook["headers"].get("X-Twilio-Signature")
    assert signature, "callback has no X-Twilio-Signature"
    assert RequestValidator(AUTH_TOKEN).validate(hook["url"], hook["form"], signature)


# -- REST resources -------------------------------------------------------------------------


def test_message_create_returns_twilio_shape_and_can_be_fetched(emulator):
    response = send(emulator, Body="Your code is 123456")

    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert body["account_sid"] == ACCOUNT_SID
    assert (body["to"], body["from"], body["body"]) == (TO, FROM, "Your code is 123456")
    assert body["status"] == "queued"
    assert body["num_segments"] == "1"
    assert body["direction"] == "outbound-api"
    assert body["error_code"] is None and body["price"] is None
    assert body["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{body['sid']}.json"
    assert deserialize.rfc2822_datetime(body["date_created"]) is not None

    fetched = requests.get(f"{emulator.base_url}{body['uri']}", auth=AUTH, timeout=5)
    assert fetched.status_code == 200
    assert fetched.json()["sid"] == body["sid"]


def test_message_status_moves_to_delivered(emulator):
    sid = send(emulator).json()["sid"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        fetched = requests.get(f"{messages_url(emulator)[:-5]}/{sid}.json", auth=AUTH, timeout=5).json()
        if fetched["status"] == "delivered":
            break
        time.sleep(0.02)
    assert fetched["status"] == "delivered"
    assert fetched["price"] and fetched["date_sent"]


def test_long_unicode_body_counts_segments(emulator):
    body = send(emulator, Body="ü" * 80 + "😀").json()
    assert body["num_segments"] == "2"


def test_call_create_returns_twilio_shape(emulator):
    response = call(emulator)
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("CA") and len(body["sid"]) == 34
    assert (body["to"], body["from"], body["status"]) == (TO, FROM, "queued")
    fetched = requests.get(f"{emulator.base_url}{body['uri']}", auth=AUTH, timeout=5)
    assert fetched.json()["sid"] == body["sid"]


def test_unknown_resource_is_twilio_404(emulator):
    response = requests.get(f"{messages_url(emulator)[:-5]}/SM{'0' * 32}.json", auth=AUTH, timeout=5)
    assert response.status_code == 404
    assert response.json()["code"] == 20404


# -- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [(ACCOUNT_SID, "wrong-token"), ("AC" + "0" * 32, AUTH_TOKEN), None])
def test_bad_credentials_are_401_with_twilio_error(emulator, auth):
    response = send(emulator, auth=auth)
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert emulator.messages() == []


def test_account_in_path_must_match_credentials(emulator):
    url = f"{emulator.base_url}/2010-04-01/Accounts/AC{'0' * 32}/Messages.json"
    response = requests.post(url, data={"To": TO, "From": FROM, "Body": "x"}, auth=AUTH, timeout=5)
    assert response.status_code == 401


# -- magic numbers and validation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [
        ("+15005550001", FROM, 21211),
        ("+15005550002", FROM, 21612),
        ("+15005550003", FROM, 21408),
        ("+15005550004", FROM, 21610),
        ("+15005550009", FROM, 21614),
        (TO, "+15005550001", 21212),
        (TO, "+15005550007", 21606),
        (TO, "+15005550008", 21611),
        ("not-a-number", FROM, 21211),
        (None, FROM, 21604),
    ],
)
def test_message_magic_numbers_are_refused_like_twilio(emulator, to, from_, code):
    response = send(emulator, To=to, From=from_)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert response.json()["status"] == 400


def test_message_needs_a_sender_and_a_body(emulator):
    assert send(emulator, From=None).json()["code"] == 21603
    assert send(emulator, Body=None).json()["code"] == 21602
    assert send(emulator, From=None, MessagingServiceSid="MG" + "1" * 32).status_code == 201


@pytest.mark.parametrize(("to", "code"), [("+15005550001", 21211), ("+15005550002", 21214)])
def test_call_magic_numbers(emulator, to, code):
    response = call(emulator, To=to)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_call_needs_twiml_or_url(emulator):
    assert call(emulator, Twiml=None).json()["code"] == 21205


# -- runtime settings -----------------------------------------------------------------------


def test_failure_rate_answers_500_or_503(emulator):
    requests.post(f"{emulator.base_url}/_emulator/config", json={"failure_rate": 1.0}, timeout=5)
    for _ in range(5):
        response = send(emulator)
        assert response.status_code in (500, 503)
        assert response.json()["code"] in (20500, 20503)
    assert emulator.messages() == []


def test_429_rate(emulator):
    emulator.configure(error_429_rate=1.0)
    response = send(emulator)
    assert response.status_code == 429
    assert response.json()["code"] == 20429


def test_latency_delays_creates(emulator):
    emulator.configure(latency=0.3)
    started = time.monotonic()
    assert send(emulator).status_code == 201
    assert time.monotonic() - started >= 0.3


def test_config_api_shows_settings_without_token_and_rejects_bad_values(emulator):
    shown = requests.get(f"{emulator.base_url}/_emulator/config", timeout=5).json()
    assert shown["account_sid"] == ACCOUNT_SID
    assert AUTH_TOKEN not in str(shown)

    for bad in ({"failure_rate": 2}, {"nonsense": 1}, {"latency": -1}):
        response = requests.post(f"{emulator.base_url}/_emulator/config", json=bad, timeout=5)
        assert response.status_code == 400, bad


def test_per_number_override_and_reset(emulator):
    number = "+14155550199"
    response = requests.post(
        f"{emulator.base_url}/_emulator/config", json={"numbers": {number: {"error": 21610}}}, timeout=5
    )
    assert response.status_code == 200
    assert send(emulator, To=number).json()["code"] == 21610
    assert send(emulator).status_code == 201

    requests.post(f"{emulator.base_url}/_emulator/config", json={"reset": True}, timeout=5)
    assert emulator.config.numbers == {}
    assert emulator.messages() == []
    assert send(emulator, To=number).status_code == 201


def test_listing_is_newest_first_and_filterable(emulator):
    for index in range(3):
        send(emulator, Body=f"m{index}")
    send(emulator, To="+14155550111", Body="other")

    listed = requests.get(f"{emulator.base_url}/_emulator/messages", params={"to": TO}, timeout=5).json()
    assert [m["body"] for m in listed["messages"]] == ["m2", "m1", "m0"]
    assert listed["messages"][0]["request"]["From"] == FROM
    limited = requests.get(f"{emulator.base_url}/_emulator/messages", params={"limit": 1}, timeout=5).json()
    assert [m["body"] for m in limited["messages"]] == ["other"]


def test_store_is_bounded():
    config = EmulatorConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, store_limit=3)
    with start_in_thread(config) as emulator:
        for index in range(5):
            send(emulator, Body=f"m{index}")
        assert [m["body"] for m in emulator.messages()] == ["m4", "m3", "m2"]


# -- status callbacks -----------------------------------------------------------------------


def test_message_callbacks_sent_then_delivered_and_signed(emulator, hooks):
    emulator.configure(delivery_delay=0.2)
    callback = hooks.url("/status?reference=msg_1")
    sid = send(emulator, StatusCallback=callback).json()["sid"]

    sent, delivered = hooks.wait_for(2)
    assert sent["form"]["MessageStatus"] == "sent"
    assert delivered["form"]["MessageStatus"] == "delivered"
    assert delivered["at"] - sent["at"] >= 0.15
    for hook in (sent, delivered):
        assert hook["args"] == {"reference": "msg_1"}
        assert hook["form"]["MessageSid"] == hook["form"]["SmsSid"] == sid
        assert hook["form"]["AccountSid"] == ACCOUNT_SID
        assert (hook["form"]["To"], hook["form"]["From"]) == (TO, FROM)
        assert "ErrorCode" not in hook["form"]
        assert hook["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert_signed(hook)


@pytest.mark.parametrize(("to", "code"), [("+15005550011", "30003"), ("+15005550013", "30006")])
def test_undelivered_numbers_report_error_code(emulator, hooks, to, code):
    send(emulator, To=to, StatusCallback=hooks.url())
    sent, final = hooks.wait_for(2)
    assert sent["form"]["MessageStatus"] == "sent"
    assert final["form"]["MessageStatus"] == "undelivered"
    assert final["form"]["ErrorCode"] == code
    assert_signed(final)


def test_override_can_make_a_message_fail(emulator, hooks):
    emulator.configure(numbers={TO: {"status": "failed", "error_code": 30007}})
    send(emulator, StatusCallback=hooks.url())
    (final,) = hooks.wait_for(1)
    assert (final["form"]["MessageStatus"], final["form"]["ErrorCode"]) == ("failed", "30007")


def test_call_progress_callbacks_in_order_with_duration(emulator, hooks):
    emulator.configure(call_duration=42)
    events = ["initiated", "ringing", "answered", "completed"]
    sid = call(emulator, StatusCallback=hooks.url(), StatusCallbackEvent=events).json()["sid"]

    received = hooks.wait_for(4)
    assert [h["form"]["CallStatus"] for h in received] == ["initiated", "ringing", "in-progress", "completed"]
    completed = received[-1]["form"]
    assert completed["CallSid"] == sid
    assert completed["CallDuration"] == "42" and completed["Duration"] == "1"
    assert completed["Direction"] == "outbound-api"
    for hook in received:
        assert_signed(hook)
    assert emulator.calls()[0]["status"] == "completed"


def test_call_without_events_reports_only_completion(emulator, hooks):
    call(emulator, StatusCallback=hooks.url())
    (only,) = hooks.wait_for(1)
    time.sleep(0.2)
    assert len(hooks.requests) == 1
    assert only["form"]["CallStatus"] == "completed"


@pytest.mark.parametrize(("to", "status"), [("+15005550021", "busy"), ("+15005550022", "no-answer")])
def test_unanswered_calls(emulator, hooks, to, status):
    events = "initiated ringing answered completed"  # Twilio also takes them space-separated
    call(emulator, To=to, StatusCallback=hooks.url(), StatusCallbackEvent=events)
    received = hooks.wait_for(3)
    assert [h["form"]["CallStatus"] for h in received] == ["initiated", "ringing", status]


def test_call_with_url_fetches_twiml_when_answered(emulator, hooks):
    hooks.reply = "<Response><Say>from url</Say></Response>"
    call(emulator, Twiml=None, Url=hooks.url("/twiml"))
    hooks.wait_for(1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not emulator.calls()[0].get("twiml"):
        time.sleep(0.02)
    assert emulator.calls()[0]["twiml"] == "<Response><Say>from url</Say></Response>"
    assert hooks.requests[0]["form"]["CallStatus"] == "in-progress"
    assert_signed(hooks.requests[0])


def test_callbacks_are_retried_when_the_receiver_fails(emulator, hooks):
    hooks.fail_first = 1
    send(emulator, StatusCallback=hooks.url())
    sent, delivered = hooks.wait_for(2)
    assert [h["form"]["MessageStatus"] for h in hooks.requests] == ["sent", "sent", "delivered"]
    assert emulator.app.stats()["callbacks_retried"] >= 1


def test_unreachable_receiver_does_not_block_or_break_the_emulator(emulator):
    emulator.configure(callback_retries=0)
    started = time.monotonic()
    for _ in range(5):
        assert send(emulator, StatusCallback="http://127.0.0.1:9/nothing-here").status_code == 201
    assert time.monotonic() - started < 2
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and emulator.app.stats()["callbacks_failed"] < 5:
        time.sleep(0.02)
    assert emulator.app.stats()["callbacks_failed"] >= 5
    assert send(emulator).status_code == 201


# -- inbound simulation ---------------------------------------------------------------------


def test_inbound_call_posts_signed_voice_webhook_and_returns_twiml(emulator, hooks):
    hooks.reply = '<Response><Dial callerId="+15005550006"><Number>+14155550123</Number></Dial></Response>'
    response = requests.post(
        f"{emulator.base_url}/_emulator/inbound/call",
        json={"from": "+14155550100", "to": "+15005550006", "url": hooks.url("/voice")},
        timeout=5,
    )
    assert response.status_code == 200
    result = response.json()
    assert result["status"] == 200
    assert "<Dial" in result["body"]
    (hook,) = hooks.requests
    assert hook["form"]["CallSid"] == result["sid"]
    assert hook["form"]["CallStatus"] == "ringing"
    assert hook["form"]["Direction"] == "inbound"
    assert (hook["form"]["From"], hook["form"]["To"]) == ("+14155550100", "+15005550006")
    assert hook["form"]["AccountSid"] == ACCOUNT_SID
    assert_signed(hook)


def test_inbound_sms_posts_signed_message_webhook(emulator, hooks):
    hooks.reply = "<Response/>"
    response = requests.post(
        f"{emulator.base_url}/_emulator/inbound/sms",
        json={"from": "+14155550100", "to": "+15005550006", "body": "STOP", "url": hooks.url("/sms")},
        timeout=5,
    )
    assert response.json()["status"] == 200
    (hook,) = hooks.requests
    assert hook["form"]["Body"] == "STOP"
    assert hook["form"]["MessageSid"].startswith("SM")
    assert_signed(hook)


def test_inbound_needs_fields_and_reports_unreachable_receiver(emulator):
    missing = requests.post(f"{emulator.base_url}/_emulator/inbound/call", json={"from": "+1"}, timeout=5)
    assert missing.status_code == 400
    down = requests.post(
        f"{emulator.base_url}/_emulator/inbound/call",
        json={"from": "+14155550100", "to": "+15005550006", "url": "http://127.0.0.1:9/voice"},
        timeout=10,
    )
    assert down.status_code == 502


def test_bad_number_override_is_refused(emulator):
    response = requests.post(
        f"{emulator.base_url}/_emulator/config", json={"numbers": {TO: {"error": "soon"}}}, timeout=5
    )
    assert response.status_code == 400
    assert send(emulator).status_code == 201
