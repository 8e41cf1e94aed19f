"""Voice notifications through the API and a real RQ worker on real Redis, via the sandbox carrier."""

from __future__ import annotations

import time

import pytest

from comms.services import callbacks, secret_bodies

TO = "+14155552671"
PARAMS = {"order": "A-1"}
LIFECYCLE = ["queued", "initiated", "ringing", "in-progress", "completed"]


@pytest.fixture
def voice_template(approved_template):
    return approved_template(
        "Your order {{order}} is at the door.", name="at-door", kind="notification", channel="voice"
    )


def call(api, template, to=TO, params=PARAMS, headers=None, **extra):
    body = {"to": to, "template_id": template["id"], "params": params, **extra}
    return api.post("/v1/calls", body, headers=headers)


def timeline(resource):
    return [e["status"] for e in resource["events"]]


def use_sandbox(runtime, make_settings, **sandbox):
    """Reconfigure the test's sandbox carrier (as test_messages does for its failure settings)."""
    object.__setattr__(runtime, "settings", make_settings(sandbox=sandbox))
    for cached in ("carriers", "router"):
        runtime.__dict__.pop(cached, None)


def test_a_call_reads_the_template_and_reaches_completed_with_a_duration(api, voice_template, work):
    r = call(api, voice_template, to="+1 (415) 555-2671", client_ref="order-A-1", repeat=2, voice="alice")
    assert r.status_code == 202, r.json
    assert r.json["id"].startswith("call_") and r.json["status"] == "queued"
    assert (r.json["to"], r.json["text"]) == (TO, "Your order A-1 is at the door.")
    assert (r.json["language"], r.json["repeat"], r.json["voice"]) == ("en-US", 2, "alice")

    work()

    c = api.get(f"/v1/calls/{r.json['id']}").json
    assert c["status"] == "completed" and c["duration"] == 12
    assert timeline(c) == LIFECYCLE
    assert c["carrier"] == "sandbox" and c["carrier_call_id"].startswith("SC")
    assert c["client_ref"] == "order-A-1" and c["error"] is None
    outbox = api.get("/v1/sandbox/outbox", query_string={"kind": "call"}).json["data"]
    assert [(o["to"], o["text"]) for o in outbox] == [(TO, "Your order A-1 is at the door.")]
    assert (outbox[0]["voice"], outbox[0]["language"], outbox[0]["loop"]) == ("alice", "en-US", 2)
    assert outbox[0]["from"] is None  # no caller id asked for, none configured


def test_a_caller_id_can_be_given(api, voice_template, work):
    r = call(api, voice_template, **{"from": "+14155550123"})
    assert r.json["from"] == "+14155550123"
    work()
    (placed,) = api.get("/v1/sandbox/outbox", query_string={"kind": "call"}).json["data"]
    assert placed["from"] == "+14155550123"


@pytest.mark.parametrize(
    ("to", "sandbox", "ending"),
    [
        ("+15005550021", {}, "busy"),  # the emulator's magic numbers hold on the sandbox too
        ("+15005550022", {}, "no-answer"),
        ("+14155550100", {"busy": ["+14155550100"]}, "busy"),  # or as the sandbox is configured
        ("+14155550101", {"no_answer": ["+14155550101"]}, "no-answer"),
    ],
)
def test_busy_and_no_answer_end_with_that_status(
    api, voice_template, work, runtime, make_settings, to, sandbox, ending
):
    use_sandbox(runtime, make_settings, delivery_delay=0, **sandbox)
    r = call(api, voice_template, to=to)
    work()
    c = api.get(f"/v1/calls/{r.json['id']}").json
    assert (c["status"], c["duration"]) == (ending, 0)
    assert timeline(c) == ["queued", "initiated", "ringing", ending]


def test_a_failed_call_and_a_refused_number_end_failed(api, voice_template, work):
    failed = call(api, voice_template, to="+15005550023").json
    invalid = call(api, voice_template, to="+15005550001").json  # Twilio's "invalid To"
    work()
    failed = api.get(f"/v1/calls/{failed['id']}").json
    assert (failed["status"], failed["error"]) == ("failed", "carrier_failed")
    invalid = api.get(f"/v1/calls/{invalid['id']}").json
    assert (invalid["status"], invalid["error"], invalid["error_code"]) == (
        "failed",
        "invalid_phone_number",
        "21211",
    )
    assert timeline(invalid) == ["queued", "failed"]


def test_a_transient_failure_is_retried(api, voice_template, work, runtime, make_settings):
    use_sandbox(runtime, make_settings, delivery_delay=0, fail_times={TO: 2})
    r = call(api, voice_template)
    work()
    c = api.get(f"/v1/calls/{r.json['id']}").json
    assert c["status"] == "completed" and c["error"] is None
    retries = [e for e in c["events"] if e["status"] == "queued" and "will retry" in (e["detail"] or "")]
    assert len(retries) == 2
    assert [s for s in timeline(c) if s != "queued"] == LIFECYCLE[1:]
    assert len(api.get("/v1/sandbox/outbox").json["data"]) == 1


def test_status_callbacks_are_signed_and_carry_the_duration(api, voice_template, work, receiver):
    secret = api.post("/v1/app/webhook-secret").json["webhook_secret"]
    r = call(api, voice_template, status_callback=receiver.url, client_ref="ref-7")
    work()
    got = [req["json"] for req in receiver.requests if req["answered"] == 200]
    assert sorted(p["status"] for p in got) == sorted(LIFECYCLE[1:])
    assert {(p["type"], p["id"], p["to"], p["client_ref"]) for p in got} == {
        ("call.status", r.json["id"], TO, "ref-7")
    }
    completed = next(p for p in got if p["status"] == "completed")
    assert completed["duration"] == 12 and completed["error"] is None
    for req in receiver.requests:
        assert callbacks.verify(secret, req["raw"], req["headers"]["Comms-Signature"])


def test_the_template_locale_sets_the_language(api, admin_api, work):
    created = api.post(
        "/v1/templates",
        {
            "name": "zh",
            "kind": "notification",
            "channel": "voice",
            "body": "您的订单{{order}}已到",
            "locale": "zh_cn",
        },
    ).json
    admin_api.post(f"/v1/templates/{created['id']}/approve")
    r = call(api, created, repeat=3)
    assert (r.json["language"], r.json["text"]) == ("zh-CN", "您的订单A-1已到")
    explicit = call(api, created, to="+14155552672", language="cmn-cn")
    assert explicit.json["language"] == "cmn-CN"
    work()
    sent = api.get("/v1/sandbox/outbox", query_string={"to": TO}).json["data"]
    assert len(sent) == 1
    assert api.get(f"/v1/calls/{r.json['id']}").json["status"] == "completed"


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"to": "+1415555"}, "invalid_phone_number", "to"),
        ({"params": {}}, "missing_params", "params"),
        ({"params": {**PARAMS, "extra": "x"}}, "unexpected_params", "params"),
        ({"repeat": 4}, "validation_error", "repeat"),
        ({"repeat": 0}, "validation_error", "repeat"),
        ({"language": "not a language"}, "validation_error", "language"),
        ({"voice": "<Play>"}, "validation_error", "voice"),
        ({"machine_detection": "Always"}, "validation_error", "machine_detection"),
        ({"text": "free words"}, "validation_error", "text"),  # a template and a text
        ({"params": {"order": "x" * 5000}}, "text_too_long", "params"),
        ({"surprise": 1}, "validation_error", "surprise"),
    ],
)
def test_bad_input_is_a_400_with_an_error_id_and_creates_nothing(api, voice_template, change, error, field):
    r = api.post("/v1/calls", {"to": TO, "template_id": voice_template["id"], "params": PARAMS, **change})
    assert r.status_code == 400, r.json
    assert (r.json["error"], r.json["code"]) == (error, 400)
    assert field in r.json["errors"]
    assert api.get("/v1/calls").json["data"] == []
    # A refused request uses up none of the number's calls.
    assert call(api, voice_template).status_code == 202


def test_templates_of_another_channel_and_free_text_are_refused(api, approved_template, admin_api):
    sms = approved_template()
    r = api.post("/v1/calls", {"to": TO, "template_id": sms["id"], "params": {"name": "A", "order": "1"}})
    assert (r.status_code, r.json["error"]) == (400, "template_channel_mismatch")
    r = api.post("/v1/calls", {"to": TO, "text": "Hello there"})
    assert (r.status_code, r.json["error"]) == (403, "free_text_not_allowed")
    admin_api.patch(f"/v1/apps/{api.app_id}", {"allow_free_text": True})
    r = api.post("/v1/calls", {"to": TO, "text": "Hello there"})
    assert r.status_code == 202 and r.json["text"] == "Hello there"


def test_idempotent_replay_calls_once_and_a_reused_key_is_a_409(api, voice_template, work):
    headers = {"Idempotency-Key": "door-A-1"}
    first = call(api, voice_template, headers=headers)
    again = call(api, voice_template, headers=headers)  # not refused by the per-callee limit either
    assert first.status_code == again.status_code == 202
    assert again.json == first.json and again.headers.get("Idempotent-Replayed") == "true"
    other = call(api, voice_template, params={"order": "B-2"}, headers=headers)
    assert (other.status_code, other.json["error"]) == (409, "idempotency_key_reused")
    work()
    assert len(api.get("/v1/calls").json["data"]) == 1
    assert len(api.get("/v1/sandbox/outbox").json["data"]) == 1


def test_the_per_callee_limit_refuses_with_429_and_retry_after(api, new_app, voice_template):
    assert call(api, voice_template).status_code == 202
    refused = call(api, voice_template)
    assert (refused.status_code, refused.json["error"]) == (429, "max_call_attempts")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "minute" in refused.json["message"]
    assert call(api, voice_template, to="+14155552672").status_code == 202  # another number
    assert len(api.get("/v1/calls").json["data"]) == 2
    other_app = new_app("other")  # the limits are per app
    tpl = other_app.post(
        "/v1/templates", {"name": "t", "kind": "notification", "channel": "voice", "body": "Hi"}
    ).json
    with_admin = new_app("ops2", admin=True)
    with_admin.post(f"/v1/templates/{tpl['id']}/approve")
    assert other_app.post("/v1/calls", {"to": TO, "template_id": tpl["id"]}).status_code == 202


def test_the_hourly_and_daily_limits_are_app_settings(api, voice_template):
    assert api.get("/v1/app").json["voice"] == {
        "max_calls_per_minute": 1,
        "max_calls_per_hour": 5,
        "max_calls_per_day": 20,
    }
    bad = api.patch("/v1/app", {"voice": {"max_calls_per_hour": -1}})
    assert (bad.status_code, bad.json["error"]) == (400, "validation_error")
    changed = api.patch("/v1/app", {"voice": {"max_calls_per_minute": 0, "max_calls_per_hour": 3}})
    assert changed.json["voice"] == {
        "max_calls_per_minute": 0,
        "max_calls_per_hour": 3,
        "max_calls_per_day": 20,
    }
    assert [call(api, voice_template).status_code for _ in range(4)] == [202, 202, 202, 429]
    refused = call(api, voice_template)
    assert refused.json["error"] == "max_call_attempts" and "hour" in refused.json["message"]
    assert int(refused.headers["Retry-After"]) > 3000


def test_list_filters_paginates_and_stays_within_the_app(api, new_app, voice_template, work):
    api.patch("/v1/app", {"voice": {"max_calls_per_minute": 0}})
    ids = []
    for i in range(3):
        ids.append(call(api, voice_template, client_ref=f"r{i}").json["id"])
        time.sleep(0.002)  # ids order by the millisecond they were made in
    busy = call(api, voice_template, to="+15005550021").json["id"]
    work()
    page = api.get("/v1/calls", query_string={"limit": 2}).json
    assert [c["id"] for c in page["data"]] == [busy, ids[2]]
    rest = api.get("/v1/calls", query_string={"limit": 2, "cursor": page["next_cursor"]}).json
    assert [c["id"] for c in rest["data"]] == [ids[1], ids[0]] and rest["next_cursor"] is None
    assert [c["id"] for c in api.get("/v1/calls", query_string={"status": "busy"}).json["data"]] == [busy]
    assert [c["id"] for c in api.get("/v1/calls", query_string={"client_ref": "r1"}).json["data"]] == [ids[1]]
    by_number = api.get("/v1/calls", query_string={"to": "+1 415 555 2671"}).json["data"]
    assert len(by_number) == 3
    bad = api.get("/v1/calls", query_string={"status": "sent"})
    assert (bad.status_code, bad.json["error"]) == (400, "validation_error")
    stranger = new_app("stranger")
    assert stranger.get(f"/v1/calls/{busy}").status_code == 404
    assert stranger.get("/v1/calls").json["data"] == []


def test_a_call_accepted_while_redis_lost_its_job_is_placed_by_the_sweeper(
    api, voice_template, work, runtime
):
    r = call(api, voice_template)
    runtime.queues["default"].empty()  # the job is gone, as after a Redis restart
    from comms.models import Call

    with runtime.db.session() as session:
        session.get(Call, r.json["id"]).enqueued_at = None
    work()
    c = api.get(f"/v1/calls/{r.json['id']}").json
    assert c["status"] == "completed"
    assert any(e["detail"] == "re-enqueued: its job was lost" for e in c["events"])


def test_calls_are_paced_per_carrier(api, voice_template, work, runtime, make_settings):
    use_sandbox(runtime, make_settings, delivery_delay=0, cps=4)
    for i in range(4):
        assert call(api, voice_template, to=f"+1415555{2700 + i}").status_code == 202
    started = time.monotonic()
    work()
    assert time.monotonic() - started >= 0.7  # four calls at four a second: slots 0.25 s apart
    assert {c["status"] for c in api.get("/v1/calls").json["data"]} == {"completed"}


def test_a_voice_code_whose_text_left_redis_fails_instead_of_reading_the_mask(api, work, runtime):
    started = api.post("/v1/verifications", {"to": TO, "channel": "voice"}).json
    call_id = started["send_attempts"][0]["call_id"]
    runtime.redis.delete(secret_bodies.key(call_id))
    work()
    c = api.get(f"/v1/calls/{call_id}").json
    assert (c["status"], c["error"]) == ("failed", "secret_expired")
    assert api.get("/v1/sandbox/outbox").json["data"] == []
