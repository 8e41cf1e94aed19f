"""The twilio adapter on the real SDK, against the emulator: sends, calls, error mapping, webhooks."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from comms.carriers.base import (
    CarrierContext,
    CarrierPermanentError,
    CarrierTransientError,
    OutboundCall,
    OutboundSms,
)
from comms.carriers.twilio import TwilioCarrier, classify

# The same credentials as the emulator fixture in conftest.py.
ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "test-auth-token-0123456789"
TO = "+14155550100"
SENDER = "+15005550006"


def make_carrier(emulator, **overrides) -> TwilioCarrier:
    config = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from": SENDER,
        "api_base_url": emulator.base_url,
        "webhook_base_url": "http://comms.test",
        "timeout": 5,
        **overrides,
    }
    return TwilioCarrier("twilio", {k: v for k, v in config.items() if v is not None})


@pytest.fixture
def carrier(emulator) -> TwilioCarrier:
    return make_carrier(emulator)


def sms(to: str = TO, reference: str = "msg_1", **kwargs) -> OutboundSms:
    from_ = kwargs.pop("from_", None)
    return OutboundSms(reference=reference, to=to, from_=from_, body="Your code is 123456", **kwargs)


# -- sending --------------------------------------------------------------------------------


def test_send_sms_returns_the_message_sid(emulator, carrier):
    result = carrier.send_sms(sms())

    assert result.carrier_message_id.startswith("SM") and len(result.carrier_message_id) == 34
    assert result.status == "sent"
    (received,) = emulator.messages()
    assert received["sid"] == result.carrier_message_id
    assert (received["to"], received["from"], received["body"]) == (TO, SENDER, "Your code is 123456")
    callback = urlsplit(received["request"]["StatusCallback"])
    assert (callback.netloc, callback.path) == ("comms.test", "/webhooks/twilio/message-status")
    assert parse_qs(callback.query) == {"reference": ["msg_1"]}


def test_explicit_sender_and_status_callback_win(emulator, carrier):
    carrier.send_sms(sms(from_="+15005550010", status_callback="http://elsewhere.test/cb"))
    request = emulator.messages()[0]["request"]
    assert request["From"] == "+15005550010"
    assert request["StatusCallback"] == "http://elsewhere.test/cb"


def test_messaging_service_without_from(emulator):
    carrier = make_carrier(emulator, **{"from": None, "messaging_service_sid": "MG" + "2" * 32})
    carrier.send_sms(sms())
    request = emulator.messages()[0]["request"]
    assert request["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in request


def test_callback_url_falls_back_to_public_url_or_is_left_out(emulator):
    context = CarrierContext(public_url="https://comms.example.com/")
    config = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": SENDER}
    config["api_base_url"] = emulator.base_url
    with_context = TwilioCarrier("twilio", config, context)
    with_context.send_sms(sms())
    assert emulator.messages()[0]["request"]["StatusCallback"].startswith(
        "https://comms.example.com/webhooks/twilio/message-status?"
    )
    make_carrier(emulator, webhook_base_url=None).send_sms(sms())
    assert "StatusCallback" not in emulator.messages()[0]["request"]


def test_no_sender_at_all_is_permanent(emulator):
    with pytest.raises(CarrierPermanentError) as caught:
        make_carrier(emulator, **{"from": None}).send_sms(sms())
    assert caught.value.error == "invalid_sender"


# -- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "from_", "code", "error"),
    [
        ("+15005550001", None, "21211", "invalid_phone_number"),
        ("+15005550002", None, "21612", "unreachable_destination"),
        ("+15005550003", None, "21408", "unreachable_destination"),
        ("+15005550004", None, "21610", "recipient_opted_out"),
        ("+15005550009", None, "21614", "not_a_mobile_number"),
        (TO, "+15005550001", "21212", "invalid_sender"),
        (TO, "+15005550007", "21606", "invalid_sender"),
    ],
)
def test_magic_numbers_are_permanent_errors(carrier, to, from_, code, error):
    with pytest.raises(CarrierPermanentError) as caught:
        carrier.send_sms(sms(to=to, from_=from_))
    assert (caught.value.code, caught.value.error) == (code, error)
    assert caught.value.message  # Twilio's own words, for the operator


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (21214, "invalid_phone_number"),
        (21217, "invalid_phone_number"),
        (21602, "invalid_message_body"),
        (21608, "unverified_recipient"),
        (21610, "recipient_opted_out"),
        (20003, "carrier_auth_failed"),
        (21999, "carrier_rejected"),
    ],
)
def test_refusal_codes_map_to_permanent_errors(emulator, carrier, code, error):
    emulator.configure(numbers={TO: {"error": code}})
    with pytest.raises(CarrierPermanentError) as caught:
        carrier.send_sms(sms())
    assert (caught.value.code, caught.value.error) == (str(code), error)


def test_full_queue_is_transient(carrier):
    with pytest.raises(CarrierTransientError) as caught:
        carrier.send_sms(sms(from_="+15005550008"))
    assert (caught.value.code, caught.value.error) == ("21611", "carrier_queue_full")


def test_server_errors_are_transient(emulator, carrier):
    emulator.configure(failure_rate=1.0)
    for _ in range(4):
        with pytest.raises(CarrierTransientError) as caught:
            carrier.send_sms(sms())
        assert caught.value.code in ("20500", "20503")
        assert caught.value.error == "carrier_unavailable"


def test_rate_limit_is_transient(emulator, carrier):
    emulator.configure(error_429_rate=1.0)
    with pytest.raises(CarrierTransientError) as caught:
        carrier.send_sms(sms())
    assert (caught.value.code, caught.value.error) == ("20429", "rate_limited")


def test_wrong_auth_token_is_permanent_and_never_shown(emulator):
    carrier = make_carrier(emulator, auth_token="not-the-token-xyz")
    with pytest.raises(CarrierPermanentError) as caught:
        carrier.send_sms(sms())
    assert (caught.value.code, caught.value.error) == ("20003", "carrier_auth_failed")
    assert "not-the-token-xyz" not in str(caught.value) + repr(caught.value) + caught.value.message
    assert carrier.masked_config()["auth_token"] == "********"


def test_timeout_is_transient(emulator):
    emulator.configure(latency=0.6)
    with pytest.raises(CarrierTransientError) as caught:
        make_carrier(emulator, timeout=0.2).send_sms(sms())
    assert caught.value.error == "carrier_timeout"
    # Twilio may well have taken a message whose answer timed out: a retry can send it twice.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not emulator.messages():
        time.sleep(0.02)
    assert len(emulator.messages()) == 1


def test_unreachable_api_is_transient(emulator):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    carrier = make_carrier(emulator, api_base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(CarrierTransientError) as caught:
        carrier.send_sms(sms())
    assert caught.value.error == "carrier_unreachable"
    assert isinstance(caught.value.__cause__, Exception)  # the original is chained, not swallowed


@pytest.mark.parametrize(
    ("status", "code", "kind", "error"),
    [
        (503, 20503, CarrierTransientError, "carrier_unavailable"),
        (502, None, CarrierTransientError, "carrier_unavailable"),
        (429, 20429, CarrierTransientError, "rate_limited"),
        (400, 21211, CarrierPermanentError, "invalid_phone_number"),
        (401, 20003, CarrierPermanentError, "carrier_auth_failed"),
        (404, 20404, CarrierPermanentError, "carrier_rejected"),
    ],
)
def test_classify(status, code, kind, error):
    result = classify(status, code, "text")
    assert type(result) is kind and result.error == error


def test_region_environment_does_not_redirect_the_emulator(emulator, monkeypatch):
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    assert make_carrier(emulator).send_sms(sms()).carrier_message_id.startswith("SM")


@pytest.mark.parametrize("config", [{"account_sid": None}, {"auth_token": ""}, {"timeout": 0},
                                    {"api_base_url": "localhost:8099"}])
def test_bad_configuration_is_refused_at_construction(emulator, config):
    with pytest.raises(ValueError):
        make_carrier(emulator, **config)


# -- calls ----------------------------------------------------------------------------------


def test_place_call_sends_say_twiml(emulator, carrier):
    result = carrier.place_call(OutboundCall(reference="call_1", to=TO, from_=None, text="Your code is 1 2 3",
                                             voice="Polly.Joanna", language="en-US", loop=2))

    assert result.carrier_message_id.startswith("CA") and result.status == "initiated"
    (received,) = emulator.calls()
    assert received["sid"] == result.carrier_message_id
    root = ET.fromstring(received["request"]["Twiml"])
    assert root.tag == "Response"
    (say,) = list(root)
    assert say.tag == "Say"
    assert say.attrib == {"voice": "Polly.Joanna", "language": "en-US", "loop": "2"}
    assert say.text == "Your code is 1 2 3"
    request = received["request"]
    assert request["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert request["StatusCallback"].startswith("http://comms.test/webhooks/twilio/call-status?reference=call_1")


def test_call_text_is_escaped(emulator, carrier):
    carrier.place_call(OutboundCall(reference="c", to=TO, from_=None, text="Tom & Jerry <3"))
    say = ET.fromstring(emulator.calls()[0]["twiml"])[0]
    assert say.text == "Tom & Jerry <3"
    assert "voice" not in say.attrib and say.attrib["loop"] == "1"


@pytest.mark.parametrize("loop", [0, 11])
def test_call_loop_is_bounded(carrier, loop):
    with pytest.raises(CarrierPermanentError):
        carrier.place_call(OutboundCall(reference="c", to=TO, from_=None, text="hi", loop=loop))


def test_call_errors_are_mapped(carrier):
    with pytest.raises(CarrierPermanentError) as caught:
        carrier.place_call(OutboundCall(reference="c", to="+15005550002", from_=None, text="hi"))
    assert (caught.value.code, caught.value.error) == ("21214", "invalid_phone_number")


# -- webhooks -------------------------------------------------------------------------------


def test_verify_request_accepts_twilios_signature_only(carrier):
    url = "https://comms.test/webhooks/twilio/message-status?reference=msg_1"
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)

    assert carrier.verify_request(url, params, signature)
    assert not carrier.verify_request(url, {**params, "MessageStatus": "failed"}, signature)
    assert not carrier.verify_request(url.replace("msg_1", "msg_2"), params, signature)
    assert not carrier.verify_request(url, params, RequestValidator("other").compute_signature(url, params))
    assert not carrier.verify_request(url, params, None)
    assert not carrier.verify_request(url, params, "")


def test_emulator_callbacks_verify_and_parse(emulator, hooks):
    carrier = make_carrier(emulator, webhook_base_url=hooks.base_url)
    emulator.configure(call_duration=9)
    sid = carrier.send_sms(sms(to="+15005550011", reference="msg_7")).carrier_message_id
    call = OutboundCall(reference="call_7", to=TO, from_=None, text="hi")
    call_sid = carrier.place_call(call).carrier_message_id

    received = hooks.wait_for(6)
    for hook in received:
        assert carrier.verify_request(hook["url"], hook["form"], hook["headers"]["X-Twilio-Signature"])
        assert not carrier.verify_request(hook["url"], {**hook["form"], "To": "+1"},
                                          hook["headers"]["X-Twilio-Signature"])

    def params(hook: dict) -> dict:
        return {**hook["args"], **hook["form"]}  # query + form, as the webhook view passes them

    message_reports = [carrier.parse_message_status(params(h)) for h in received if "message" in h["path"]]
    assert [(r.status, r.error_code) for r in message_reports] == [("sent", None), ("undelivered", "30003")]
    assert {r.carrier_message_id for r in message_reports} == {sid}
    assert {r.reference for r in message_reports} == {"msg_7"}
    assert message_reports[-1].error_message == "Unreachable destination handset"
    call_reports = [carrier.parse_call_status(params(h)) for h in received if "call" in h["path"]]
    assert [r.status for r in call_reports] == ["initiated", "ringing", "in-progress", "completed"]
    assert call_reports[-1].duration == 9 and call_reports[-1].carrier_message_id == call_sid
    assert call_reports[-1].reference == "call_7"


@pytest.mark.parametrize(
    ("twilio", "ours"),
    [("accepted", "sending"), ("queued", "sending"), ("sending", "sending"), ("sent", "sent"),
     ("delivered", "delivered"), ("read", "delivered"), ("undelivered", "undelivered"), ("failed", "failed")],
)
def test_message_status_mapping(carrier, twilio, ours):
    report = carrier.parse_message_status({"SmsSid": "SM1", "SmsStatus": twilio})
    assert (report.carrier_message_id, report.status) == ("SM1", ours)
    assert report.raw["SmsStatus"] == twilio


@pytest.mark.parametrize("status", ["queued", "initiated", "ringing", "in-progress", "completed", "busy",
                                    "no-answer", "failed", "canceled"])
def test_call_status_mapping(carrier, status):
    report = carrier.parse_call_status({"CallSid": "CA1", "CallStatus": status})
    assert report.status == status and report.duration is None


def test_unparseable_callbacks_are_refused(carrier):
    with pytest.raises(ValueError):
        carrier.parse_message_status({"MessageSid": "SM1", "MessageStatus": "exploded"})
    with pytest.raises(ValueError):
        carrier.parse_call_status({"CallStatus": "completed"})


# -- concurrency ----------------------------------------------------------------------------


def test_concurrent_sends_share_one_adapter(emulator, carrier):
    emulator.configure(latency=0.05)
    results: list[str] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        try:
            sid = carrier.send_sms(sms(reference=f"msg_{index}")).carrier_message_id
            with lock:
                results.append(sid)
        except Exception as exc:  # collected so the assertion shows it
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(set(results)) == 50
    assert set(results) <= {m["sid"] for m in emulator.messages(limit=1000)}
