"""One contract, every adapter: the sandbox must behave like the real twilio adapter (run against the
emulator), so what passes in development holds in production."""

from __future__ import annotations

import pytest

from comms.carriers.base import (
    CarrierContext,
    CarrierPermanentError,
    CarrierTransientError,
    OutboundCall,
    OutboundSms,
)
from comms.carriers.sandbox import SandboxCarrier
from comms.carriers.twilio import TwilioCarrier
from comms.redis_conn import connect

ACCOUNT_SID = "AC" + "a1" * 16  # the account of tests/carriers/conftest.py's emulator
AUTH_TOKEN = "test-auth-token-0123456789"
SENDER = "+15005550006"


@pytest.fixture(params=["sandbox", "twilio"])
def adapter(request, backing):
    """``(carrier, break_it)``: the adapter, and a function that makes its carrier fail transiently."""
    redis = connect(backing["redis_url"])
    if request.param == "sandbox":
        carrier = SandboxCarrier(
            "sandbox", {"from": SENDER, "delivery_delay": 0}, CarrierContext(redis=redis)
        )

        def break_it():
            carrier.config["transient_failure_rate"] = 1.0
    else:
        emulator = request.getfixturevalue("emulator")
        carrier = TwilioCarrier(
            "twilio",
            {
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "from": SENDER,
                "api_base_url": emulator.base_url,
            },
            CarrierContext(redis=redis),
        )

        def break_it():
            emulator.configure(failure_rate=1.0)

    yield carrier, break_it
    redis.close()


def sms(to="+14155552671", body="hello"):
    return OutboundSms(reference="msg_contract", to=to, from_=SENDER, body=body, app_id="app_contract")


def test_a_text_is_taken_with_a_carrier_id(adapter):
    carrier, _ = adapter
    result = carrier.send_sms(sms())
    assert result.status == "sent" and len(result.carrier_message_id) >= 10
    assert result.carrier_message_id != carrier.send_sms(sms()).carrier_message_id


@pytest.mark.parametrize(
    ("to", "error", "code"),
    [
        ("+15005550001", "invalid_phone_number", "21211"),
        ("+15005550002", "unreachable_destination", "21612"),
        ("+15005550004", "recipient_opted_out", "21610"),
        ("+15005550009", "not_a_mobile_number", "21614"),
    ],
)
def test_twilio_test_numbers_fail_permanently_alike(adapter, to, error, code):
    carrier, _ = adapter
    with pytest.raises(CarrierPermanentError) as raised:
        carrier.send_sms(sms(to=to))
    assert (raised.value.error, raised.value.code) == (error, code)


def test_an_outage_is_transient(adapter):
    carrier, break_it = adapter
    break_it()
    with pytest.raises(CarrierTransientError):
        carrier.send_sms(sms())


def test_a_call_is_placed(adapter):
    carrier, _ = adapter
    result = carrier.place_call(
        OutboundCall(
            reference="call_contract",
            to="+14155552671",
            from_=SENDER,
            text="Your code is 1 2 3",
            language="en-US",
            loop=2,
        )
    )
    assert result.status == "initiated" and result.carrier_message_id


@pytest.mark.parametrize(
    ("to", "error", "code"),
    [
        ("+15005550001", "invalid_phone_number", "21211"),
        ("+15005550002", "invalid_phone_number", "21214"),
        ("+15005550003", "unreachable_destination", "21215"),
        ("+15005550004", "unreachable_destination", "21216"),
    ],
)
def test_twilio_test_numbers_refuse_calls_alike(adapter, to, error, code):
    carrier, _ = adapter
    with pytest.raises(CarrierPermanentError) as raised:
        carrier.place_call(OutboundCall(reference="call_contract", to=to, from_=SENDER, text="hello"))
    assert (raised.value.error, raised.value.code) == (error, code)


def test_secrets_are_masked(adapter):
    carrier, _ = adapter
    shown = carrier.masked_config()
    assert AUTH_TOKEN not in str(shown)
    assert shown.get("from") == SENDER
