"""Login codes through the API and a real RQ worker on real Redis, via the sandbox carrier."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, text, update
from werkzeug.serving import make_server

from comms.models import Base, Call, Message, Verification, utcnow

TO = "+14155552671"
GB = "+447400123456"
CODE_RE = re.compile(r"(?<!\d)\d{4,10}(?!\d)")


def start(api, to=TO, **extra):
    return api.post("/v1/verifications", {"to": to, **extra})


def check(api, code, **target):
    return api.post("/v1/verifications/check", {**(target or {"to": TO}), "code": code})


def outbox(api, to=TO):
    return api.get("/v1/sandbox/outbox", query_string={"to": to, "limit": 100}).json["data"]


def code_of(item) -> str:
    return CODE_RE.search(item["body"]).group()


def sent_code(api, work, to=TO) -> str:
    work()
    return code_of(outbox(api, to)[0])


def settings(api, **verification):
    r = api.patch("/v1/app", {"verification": verification})
    assert r.status_code == 200, r.json


def wrong(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def test_send_then_the_sandbox_has_the_code_then_check_approves(api, work):
    r = start(api, to="+1 (415) 555-2671")
    assert r.status_code == 201, r.json
    v = r.json
    assert v["id"].startswith("ver_") and v["status"] == "pending" and v["valid"] is False
    assert (v["to"], v["channel"], v["country"], v["locale"], v["code_length"]) == (TO, "sms", "US", "en", 6)
    assert v["expires_at"] > v["created_at"]
    assert [(a["channel"], a["status"]) for a in v["send_attempts"]] == [("sms", "queued")]
    assert "code" not in v and "code_hash" not in v

    code = sent_code(api, work)
    assert len(code) == 6
    assert outbox(api)[0]["body"] == f"Your verification code is {code}. It expires in 10 minutes."

    ok = check(api, code)
    assert ok.status_code == 200, ok.json
    assert (ok.json["id"], ok.json["status"], ok.json["valid"]) == (v["id"], "approved", True)
    got = api.get(f"/v1/verifications/{v['id']}").json
    assert got["status"] == "approved" and got["valid"] is True and got["approved_at"]
    assert got["send_attempts"][0]["status"] == "delivered"
    # The message row shows the text with the code masked; only the carrier saw the code.
    message = api.get(f"/v1/messages/{got['send_attempts'][0]['message_id']}").json
    assert message["body"] == "Your verification code is ******. It expires in 10 minutes."
    assert message["client_ref"] == v["id"]
    # Approved once, never again.
    again = check(api, code, verification_id=v["id"])
    assert (again.status_code, again.json["status"], again.json["valid"]) == (200, "approved", False)


def test_a_wrong_code_is_valid_false_and_stays_pending(api, work):
    v = start(api).json
    code = sent_code(api, work)
    r = check(api, wrong(code), verification_id=v["id"])
    assert r.status_code == 200
    assert (r.json["status"], r.json["valid"], r.json["checks"]) == ("pending", False, 1)
    assert check(api, code).json["valid"] is True


def test_after_five_wrong_checks_the_right_code_no_longer_works(api, work):
    v = start(api).json
    code = sent_code(api, work)
    results = [check(api, wrong(code)).json for _ in range(5)]
    assert [r["status"] for r in results] == ["pending"] * 4 + ["max_attempts_reached"]
    assert not any(r["valid"] for r in results)
    r = check(api, code)
    assert (r.status_code, r.json["error"]) == (429, "max_check_attempts")
    assert int(r.headers["Retry-After"]) >= 1
    got = api.get(f"/v1/verifications/{v['id']}").json
    assert (got["status"], got["checks"], got["valid"]) == ("max_attempts_reached", 5, False)
    settings(api, min_resend_interval=0)
    fresh = start(api).json  # a new verification, with a new code and a fresh count of checks
    assert fresh["id"] != v["id"] and fresh["checks"] == 0


def test_the_sixth_send_in_ten_minutes_is_refused(api, work):
    settings(api, min_resend_interval=0)
    ids = {start(api).json["id"] for _ in range(5)}
    assert len(ids) == 1  # one verification, resent
    r = start(api)
    assert (r.status_code, r.json["error"]) == (429, "max_send_attempts")
    assert 590 <= int(r.headers["Retry-After"]) <= 600
    work()
    assert len(outbox(api)) == 5
    assert len(api.get(f"/v1/verifications/{ids.pop()}").json["send_attempts"]) == 5


def test_a_resend_inside_the_window_carries_the_same_code(api, work):
    settings(api, min_resend_interval=0)
    first = start(api).json
    code = sent_code(api, work)
    second = start(api, locale="zh-CN").json
    assert second["id"] == first["id"] and second["expires_at"] == first["expires_at"]
    assert len(second["send_attempts"]) == 2
    work()
    latest = outbox(api)[0]["body"]
    assert latest == f"您的验证码是{code}，10分钟内有效。"
    assert check(api, code).json["valid"] is True


def test_resending_sooner_than_the_interval_is_refused(api, work):
    assert start(api).status_code == 201
    r = start(api)
    assert (r.status_code, r.json["error"]) == (429, "resend_too_soon")
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    work()
    assert len(outbox(api)) == 1


@pytest.fixture
def live_url(flask_app):
    server = make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_eight_concurrent_checks_of_the_right_code_approve_exactly_once(api, work, live_url):
    v = start(api).json
    code = sent_code(api, work)
    barrier = threading.Barrier(8)
    results: list[requests.Response] = []

    def one():
        with requests.Session() as http:
            barrier.wait()
            results.append(
                http.post(
                    f"{live_url}/v1/verifications/check",
                    json={"verification_id": v["id"], "code": code},
                    headers={"Authorization": f"Bearer {api.key}"},
                    timeout=30,
                )
            )

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert sum(r.status_code == 200 and r.json()["valid"] for r in results) == 1
    for r in results:  # the rest: told it is approved, or that the checks were used up meanwhile
        assert (r.status_code == 200 and r.json()["status"] == "approved") or (
            r.status_code == 429 and r.json()["error"] == "max_check_attempts"
        ), r.text
    got = api.get(f"/v1/verifications/{v['id']}").json
    assert got["status"] == "approved" and got["checks"] <= 5


def test_no_column_of_the_database_holds_the_plaintext_code(api, work, runtime):
    v = start(api, code_length=10).json
    code = sent_code(api, work)
    assert len(code) == 10
    assert check(api, wrong(code)).json["valid"] is False
    scanned = 0
    with runtime.db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for column, value in row._mapping.items():
                    scanned += 1
                    assert code not in str(value), f"{table.name}.{column} holds the code"
        stored = conn.execute(text("SELECT code_hash FROM verifications")).scalar_one()
    assert scanned > 50 and len(stored) == 64
    assert check(api, code, verification_id=v["id"]).json["valid"] is True


def test_cancel_stops_the_code_and_a_new_request_mints_a_new_verification(api, work):
    settings(api, min_resend_interval=0)
    v = start(api, code_length=10).json
    code = sent_code(api, work)
    canceled = api.post(f"/v1/verifications/{v['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json["status"] == "canceled"
    r = check(api, code, verification_id=v["id"])
    assert (r.status_code, r.json["status"], r.json["valid"]) == (200, "canceled", False)
    again = api.post(f"/v1/verifications/{v['id']}/cancel")
    assert (again.status_code, again.json["error"]) == (409, "invalid_state")
    fresh = start(api).json
    assert fresh["id"] != v["id"] and fresh["status"] == "pending"
    new_code = sent_code(api, work)
    assert new_code != code
    assert check(api, new_code).json["valid"] is True
    assert api.get(f"/v1/verifications/{v['id']}").json["status"] == "canceled"


def test_an_expired_code_no_longer_works_and_stays_readable(api, work, runtime):
    settings(api, min_resend_interval=0)
    v = start(api, code_length=10).json
    code = sent_code(api, work)
    with runtime.db.session() as session:
        session.execute(
            update(Verification)
            .where(Verification.id == v["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    r = check(api, code)
    assert (r.status_code, r.json["status"], r.json["valid"]) == (200, "expired", False)
    assert api.get(f"/v1/verifications/{v['id']}").json["status"] == "expired"
    fresh = start(api).json
    assert fresh["id"] != v["id"]
    assert sent_code(api, work) != code


def test_an_expired_pending_verification_reads_as_expired(api, runtime):
    v = start(api).json
    with runtime.db.session() as session:
        session.execute(
            update(Verification)
            .where(Verification.id == v["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert api.get(f"/v1/verifications/{v['id']}").json["status"] == "expired"
    assert api.post(f"/v1/verifications/{v['id']}/cancel").json["error"] == "invalid_state"


def test_a_number_outside_the_allow_list_is_refused(api, work):
    settings(api, allowed_countries=["gb"])
    assert api.get("/v1/app").json["verification"]["allowed_countries"] == ["GB"]
    r = start(api)
    assert (r.status_code, r.json["error"]) == (403, "country_not_allowed")
    assert start(api, to=GB).status_code == 201
    # The app's own allow-list applies to codes too.
    settings(api, allowed_countries=[])
    api.patch("/v1/app", {"allowed_countries": ["FR"]})
    assert start(api, to=GB).json["error"] == "country_not_allowed"
    work()
    assert len(api.get("/v1/sandbox/outbox").json["data"]) == 1


def spoken_code(api, work, to=TO) -> str:
    """The code a sandbox call read out, checked to be digit by digit with pauses, twice."""
    work()
    (item,) = api.get("/v1/sandbox/outbox", query_string={"to": to, "kind": "call"}).json["data"]
    said = re.findall(r"\d(?:, \d)+", item["text"])
    assert len(said) == 2 and said[0] == said[1], item["text"]
    return said[0].replace(", ", "")


def test_a_voice_code_is_read_digit_by_digit_twice_and_approves(api, work, runtime):
    r = start(api, channel="voice")
    assert r.status_code == 201, r.json
    assert (r.json["channel"], r.json["status"]) == ("voice", "pending")
    (attempt,) = r.json["send_attempts"]
    assert (attempt["channel"], attempt["status"], attempt["message_id"]) == ("voice", "queued", None)
    code = spoken_code(api, work)
    assert len(code) == 6
    call = api.get(f"/v1/calls/{attempt['call_id']}").json
    assert (call["status"], call["purpose"], call["language"], call["repeat"]) == (
        "completed",
        "verification",
        "en-US",
        1,
    )
    assert (
        call["text"] == "Your verification code is: *, *, *, *, *, *. Again, your code is: *, *, *, *, *, *."
    )
    assert api.get(f"/v1/verifications/{r.json['id']}").json["send_attempts"][0]["status"] == "completed"
    assert check(api, wrong(code)).json["valid"] is False
    ok = check(api, code)
    assert (ok.status_code, ok.json["status"], ok.json["valid"]) == (200, "approved", True)
    with runtime.db.session() as session:  # login codes go before notifications
        assert session.scalar(select(Call.queue).where(Call.id == attempt["call_id"])) == "verify"


def test_a_pending_sms_code_is_resent_by_voice_and_calls_are_capped_per_number(api, work):
    settings(api, min_resend_interval=0)
    first = start(api).json
    code = sent_code(api, work)
    again = start(api, channel="voice")
    assert again.status_code == 201 and again.json["id"] == first["id"]
    assert again.json["channel"] == "voice"
    assert [a["channel"] for a in again.json["send_attempts"]] == ["sms", "voice"]
    assert spoken_code(api, work) == code  # the same code, not a second valid one
    refused = start(api, channel="voice")  # the app's per-callee cap: one call a minute
    assert (refused.status_code, refused.json["error"]) == (429, "max_call_attempts")
    assert int(refused.headers["Retry-After"]) >= 1
    assert start(api).status_code == 201  # a text still goes
    assert check(api, code).json["status"] == "approved"


def test_a_voice_template_reads_its_text_twice(api, approved_template, work):
    tpl = approved_template(
        "Your Acme code is {{code}}.", name="acme-voice", kind="verification", channel="voice"
    )
    r = start(api, channel="voice", template_id=tpl["id"])
    assert r.status_code == 201, r.json
    work()
    (item,) = api.get("/v1/sandbox/outbox", query_string={"kind": "call"}).json["data"]
    assert re.fullmatch(r"Your Acme code is \d(, \d){5}\.", item["text"]) and item["loop"] == 2
    code = item["text"][len("Your Acme code is ") : -1].replace(", ", "")
    assert check(api, code).json["valid"] is True
    sms_tpl = approved_template("Code: {{code}}", name="acme-sms", kind="verification")
    mismatch = start(api, to="+14155552672", channel="voice", template_id=sms_tpl["id"])
    assert (mismatch.status_code, mismatch.json["error"]) == (400, "template_channel_mismatch")


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({"to": "+1415555"}, "invalid_phone_number", "to"),
        ({}, "validation_error", "to"),
        ({"to": TO, "channel": "fax"}, "validation_error", "channel"),
        ({"to": TO, "code_length": 3}, "validation_error", "code_length"),
        ({"to": TO, "code_length": 11}, "validation_error", "code_length"),
        ({"to": TO, "client_ip": "not-an-ip"}, "validation_error", "client_ip"),
        ({"to": TO, "locale": "xx-YY"}, "validation_error", "locale"),
        ({"to": TO, "template_id": "tpl_nope"}, "template_not_found", "template_id"),
        ({"to": TO, "surprise": 1}, "validation_error", "surprise"),
    ],
)
def test_bad_start_requests_are_400s_and_create_nothing(api, runtime, body, error, field):
    r = api.post("/v1/verifications", body)
    assert r.status_code == 400, r.json
    assert (r.json["error"], field in r.json["errors"]) == (error, True), r.json
    with runtime.db.session() as session:
        assert session.scalars(select(Verification)).all() == []
        assert session.scalars(select(Message)).all() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": TO}, "code"),
        ({"to": TO, "code": "12ab"}, "code"),
        ({"to": TO, "code": 123456}, "code"),
        ({"to": TO, "code": "123"}, "code"),
        ({"code": "123456"}, "verification_id"),
        ({"to": TO, "verification_id": "ver_x", "code": "123456"}, "verification_id"),
    ],
)
def test_bad_checks_are_400s_and_count_nothing(api, body, field):
    v = start(api).json
    r = api.post("/v1/verifications/check", body)
    assert (r.status_code, r.json["error"]) == (400, "validation_error")
    assert field in r.json["errors"], r.json
    assert api.get(f"/v1/verifications/{v['id']}").json["checks"] == 0


def test_unknown_verifications_are_404s(api):
    assert check(api, "123456").json["error"] == "verification_not_found"
    assert check(api, "123456", verification_id="ver_nope").status_code == 404
    assert api.get("/v1/verifications/ver_nope").status_code == 404
    assert api.post("/v1/verifications/ver_nope/cancel").status_code == 404


def test_another_app_cannot_see_check_or_cancel_a_verification(api, new_app, work):
    v = start(api).json
    code = sent_code(api, work)
    other = new_app("rival")
    assert other.get(f"/v1/verifications/{v['id']}").status_code == 404
    assert check(other, code, verification_id=v["id"]).status_code == 404
    assert check(other, code).status_code == 404
    assert other.post(f"/v1/verifications/{v['id']}/cancel").status_code == 404
    assert other.get("/v1/sandbox/outbox").json["data"] == []
    assert api.get(f"/v1/verifications/{v['id']}").json["checks"] == 0


def test_locale_texts_and_the_default_locale_by_country(api, work):
    start(api, to="+8613800138000")
    work()
    body = outbox(api, "+8613800138000")[0]["body"]
    assert re.fullmatch(r"您的验证码是\d{6}，10分钟内有效。", body), body
    start(api, to=GB, locale="fr_FR")
    work()
    assert outbox(api, GB)[0]["body"].startswith("Votre code de vérification est ")
    settings(api, code_ttl=60)
    start(api, to="+14155550100", locale="en-GB")
    work()
    assert outbox(api, "+14155550100")[0]["body"].endswith("It expires in 1 minute.")


def test_an_approved_verification_template_overrides_the_text(api, approved_template, work):
    tpl = approved_template(
        "Acme: {{code}} is your login code. Never share it.", name="login", kind="verification"
    )
    r = start(api, template_id=tpl["id"], code_length=8)
    assert r.status_code == 201, r.json
    work()
    body = outbox(api)[0]["body"]
    assert re.fullmatch(r"Acme: \d{8} is your login code\. Never share it\.", body), body
    assert check(api, code_of(outbox(api)[0])).json["valid"] is True


def test_only_approved_verification_templates_are_used(api, approved_template):
    note = approved_template()
    r = start(api, template_id=note["id"])
    assert (r.status_code, r.json["error"]) == (400, "template_kind_mismatch")
    pending = api.post(
        "/v1/templates", {"name": "login", "kind": "verification", "body": "Code: {{code}}"}
    ).json
    r = start(api, template_id=pending["id"])
    assert (r.status_code, r.json["error"]) == (400, "template_not_approved")


def test_sends_per_client_ip_are_capped(api, work):
    settings(api, max_sends_per_ip_per_hour=2)
    assert start(api, to="+14155550101", client_ip="203.0.113.7").status_code == 201
    assert start(api, to="+14155550102", client_ip="203.0.113.7").status_code == 201
    r = start(api, to="+14155550103", client_ip="203.0.113.7")
    assert (r.status_code, r.json["error"]) == (429, "rate_limited")
    assert 3590 <= int(r.headers["Retry-After"]) <= 3600
    assert start(api, to="+14155550103", client_ip="203.0.113.8").status_code == 201
    # One IPv6 subscriber (a /64) counts as one client.
    assert start(api, to="+14155550104", client_ip="2001:db8:1:2::1").status_code == 201
    assert start(api, to="+14155550105", client_ip="2001:db8:1:2::2").status_code == 201
    assert start(api, to="+14155550106", client_ip="2001:db8:1:2:ffff::9").json["error"] == "rate_limited"
    # A refusal spends nothing: that number can still have its code.
    assert start(api, to="+14155550106").status_code == 201


def test_sends_per_country_per_day_are_capped(api):
    settings(api, max_sends_per_country_per_day=2)
    assert start(api, to="+14155550101").status_code == 201
    assert start(api, to="+14155550102").status_code == 201
    r = start(api, to="+14155550103")
    assert (r.status_code, r.json["error"]) == (429, "country_limit_reached")
    assert 86000 <= int(r.headers["Retry-After"]) <= 86400
    assert start(api, to=GB).status_code == 201


def test_limits_are_per_app(api, new_app):
    other = new_app("other")
    assert start(api).status_code == 201
    assert start(api).json["error"] == "resend_too_soon"
    assert start(other).status_code == 201


def test_login_codes_go_before_a_bulk_campaign(api, approved_template, work, runtime):
    tpl = approved_template()
    batch = api.post(
        "/v1/messages/batch",
        {
            "template_id": tpl["id"],
            "messages": [
                {"to": f"+1415555{i:04d}", "params": {"name": "A", "order": str(i)}} for i in range(300)
            ],
        },
    )
    assert batch.status_code == 202
    v = start(api).json
    assert runtime.queues["verify"].count == 1
    work()
    with runtime.db.session() as session:
        message_id = v["send_attempts"][0]["message_id"]
        queue = session.scalar(select(Message.queue).where(Message.id == message_id))
        rows = session.execute(
            text(
                "SELECT message_id, MIN(at) FROM message_events WHERE status = 'sending' GROUP BY message_id"
            )
        ).all()
    assert queue == "verify"
    first = {m: at for m, at in rows}
    code_at = first.pop(message_id)
    assert len(first) == 300 and all(str(code_at) <= str(at) for at in first.values())


def test_a_code_redis_lost_is_replaced_on_resend(api, work, runtime):
    settings(api, min_resend_interval=0)
    v = start(api, code_length=10).json
    old = sent_code(api, work)
    runtime.redis.delete(f"comms:verify:code:{v['id']}")
    assert start(api).json["id"] == v["id"]
    new = sent_code(api, work)
    assert new != old
    assert check(api, old).json["valid"] is False
    assert check(api, new).json["valid"] is True


def test_verification_settings_are_validated(api):
    me = api.get("/v1/app").json["verification"]
    assert me["max_sends_per_ip_per_hour"] == 20 and me["fraud_guard"] is True
    for bad in (
        {"max_sends_per_ip_per_hour": -1},
        {"fraud_guard_min_conversion": 1.5},
        {"allowed_countries": ["USA"]},
        {"fraud_guard_pause": 1},
    ):
        r = api.patch("/v1/app", {"verification": bad})
        assert (r.status_code, r.json["error"]) == (400, "validation_error"), bad


def test_without_redis_a_start_is_refused_and_nothing_is_written(api, runtime):
    from comms.redis_conn import connect

    runtime.__dict__["redis"] = connect("redis://127.0.0.1:1/0")  # limits cannot be checked: fail closed
    r = start(api)
    assert (r.status_code, r.json["error"]) == (503, "service_unavailable")
    with runtime.db.session() as session:
        assert session.scalars(select(Verification)).all() == []
        assert session.scalars(select(Message)).all() == []
