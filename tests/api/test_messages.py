"""Sending texts through the API and a real RQ worker on real Redis, via the sandbox carrier."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from comms.services import callbacks

TO = "+14155552671"
PARAMS = {"name": "Ada", "order": "A-1"}


def send(api, template, to=TO, params=PARAMS, headers=None, **extra):
    return api.post(
        "/v1/messages", {"to": to, "template_id": template["id"], "params": params, **extra}, headers=headers
    )


def timeline(message):
    return [e["status"] for e in message["events"]]


def test_lifecycle_queued_sending_sent_delivered(api, approved_template, work):
    tpl = approved_template()
    r = send(api, tpl, to="+1 (415) 555-2671", client_ref="order-1")
    assert r.status_code == 202
    assert r.json["status"] == "queued"
    assert r.json["to"] == TO  # normalised to E.164
    assert r.json["id"].startswith("msg_")
    assert (r.json["segments"], r.json["encoding"]) == (1, "GSM-7")

    work()

    m = api.get(f"/v1/messages/{r.json['id']}").json
    assert m["status"] == "delivered"
    assert timeline(m) == ["queued", "sending", "sent", "delivered"]
    stamps = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in m["events"]]
    assert stamps == sorted(stamps) and all(s.tzinfo == UTC for s in stamps)
    assert m["carrier"] == "sandbox" and m["carrier_message_id"]
    assert m["body"] == "Hi Ada, your order A-1 has shipped."
    outbox = api.get("/v1/sandbox/outbox", query_string={"to": TO}).json["data"]
    assert [o["body"] for o in outbox] == [m["body"]]


def test_transient_failure_is_retried_then_delivered(api, approved_template, work, make_settings, runtime):
    object.__setattr__(runtime, "settings", make_settings(sandbox={"fail_times": {TO: 2}}))
    runtime.__dict__.pop("carriers", None)
    runtime.__dict__.pop("router", None)
    tpl = approved_template()
    r = send(api, tpl)
    work()
    m = api.get(f"/v1/messages/{r.json['id']}").json
    assert m["status"] == "delivered"
    assert [s for i, s in enumerate(timeline(m)) if i == 0 or s != timeline(m)[i - 1]] == [
        "queued",
        "sending",
        "sent",
        "delivered",
    ]
    details = [e["detail"] for e in m["events"]]
    assert sum("will retry" in d for d in details if d) == 2
    assert "attempt 3" in details
    assert m["error"] is None and m["error_code"] is None
    assert len(api.get("/v1/sandbox/outbox").json["data"]) == 1


def test_permanent_failure_ends_failed_with_the_carrier_code(api, approved_template, work):
    tpl = approved_template()
    r = send(api, tpl, to="+15005550001")  # Twilio's magic "invalid To" number
    work()
    m = api.get(f"/v1/messages/{r.json['id']}").json
    assert m["status"] == "failed"
    assert (m["error"], m["error_code"]) == ("invalid_phone_number", "21211")
    assert timeline(m) == ["queued", "sending", "failed"]
    assert api.get("/v1/sandbox/outbox").json["data"] == []


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({"to": "+1415555", "params": PARAMS}, "invalid_phone_number", "to"),
        ({"to": "not a number", "params": PARAMS}, "invalid_phone_number", "to"),
        ({"to": TO, "params": {"name": "Ada"}}, "missing_params", "params"),
        ({"to": TO, "params": {**PARAMS, "coupon": "X"}}, "unexpected_params", "params"),
        ({"to": TO, "params": {"name": ["Ada"], "order": "1"}}, "validation_error", "params"),
        ({"params": PARAMS}, "validation_error", "to"),
        ({"to": TO, "params": PARAMS, "send_at": "tomorrow"}, "validation_error", "send_at"),
        ({"to": TO, "params": PARAMS, "surprise": 1}, "validation_error", "surprise"),
    ],
)
def test_bad_input_is_a_400_with_an_error_id_and_creates_nothing(api, approved_template, body, error, field):
    tpl = approved_template()
    r = api.post("/v1/messages", {"template_id": tpl["id"], **body})
    assert r.status_code == 400, r.json
    assert r.json["error"] == error
    assert r.json["code"] == 400 and r.json["status"] == "Bad Request" and r.json["message"]
    assert field in r.json["errors"]
    assert api.get("/v1/messages").json["data"] == []


def test_unknown_and_unapproved_templates_are_refused(api, work):
    r = api.post("/v1/messages", {"to": TO, "template": "nope", "params": {}})
    assert (r.status_code, r.json["error"]) == (400, "template_not_found")
    pending = api.post("/v1/templates", {"name": "p", "kind": "notification", "body": "Hello"}).json
    assert pending["status"] == "pending"
    r = api.post("/v1/messages", {"to": TO, "template": "p", "params": {}})
    assert (r.status_code, r.json["error"]) == (400, "template_not_approved")
    assert api.get("/v1/messages").json["data"] == []


def test_malformed_json_is_a_400(api):
    r = api.client.post(
        "/v1/messages",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.key}"},
    )
    assert r.status_code == 400
    assert r.json["error"] == "malformed_json"


def test_missing_or_wrong_key_is_a_401(client):
    r = client.post("/v1/messages", json={"to": TO})
    assert (r.status_code, r.json["error"]) == (401, "unauthorized")
    r = client.get("/v1/messages", headers={"Authorization": "Bearer ck_nope_nope"})
    assert (r.status_code, r.json["error"]) == (401, "unauthorized")


def test_idempotent_replay_sends_once_and_a_reused_key_is_a_409(api, approved_template, work):
    tpl = approved_template()
    headers = {"Idempotency-Key": "order-1-shipped"}
    first = send(api, tpl, headers=headers)
    again = send(api, tpl, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = send(api, tpl, params={"name": "Bob", "order": "A-2"}, headers=headers)
    assert (other.status_code, other.json["error"]) == (409, "idempotency_key_reused")
    work()
    assert len(api.get("/v1/messages").json["data"]) == 1
    assert len(api.get("/v1/sandbox/outbox").json["data"]) == 1


def test_another_app_cannot_read_or_use_the_message_or_template(api, new_app, approved_template, work):
    tpl = approved_template()
    r = send(api, tpl)
    other = new_app("rival")
    assert other.get(f"/v1/messages/{r.json['id']}").status_code == 404
    assert other.get(f"/v1/templates/{tpl['id']}").status_code == 404
    assert other.post(f"/v1/messages/{r.json['id']}/cancel").status_code == 404
    used = other.post("/v1/messages", {"to": TO, "template_id": tpl["id"], "params": PARAMS})
    assert (used.status_code, used.json["error"]) == (400, "template_not_found")
    assert other.get("/v1/messages").json["data"] == []
    work()
    assert other.get("/v1/sandbox/outbox").json["data"] == []


def test_free_text_only_where_the_admin_allows_it(api, admin_api, work):
    r = api.post("/v1/messages", {"to": TO, "body": "plain text"})
    assert (r.status_code, r.json["error"]) == (403, "free_text_not_allowed")
    assert api.patch("/v1/app", {"allow_free_text": True}).json["error"] == "validation_error"
    assert admin_api.patch(f"/v1/apps/{api.app_id}", {"allow_free_text": True}).status_code == 200
    r = api.post("/v1/messages", {"to": TO, "body": "Ünïcode 你好"})
    assert r.status_code == 202
    assert r.json["encoding"] == "UCS-2"
    work()
    assert api.get(f"/v1/messages/{r.json['id']}").json["status"] == "delivered"


def test_allowed_countries_refuse_other_countries(api, approved_template):
    tpl = approved_template()
    assert api.patch("/v1/app", {"allowed_countries": ["gb"]}).json["allowed_countries"] == ["GB"]
    r = send(api, tpl)
    assert (r.status_code, r.json["error"]) == (403, "country_not_allowed")
    assert send(api, tpl, to="+447400123456").status_code == 202


def test_scheduled_message_waits_and_can_be_canceled(api, approved_template, work):
    tpl = approved_template()
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = send(api, tpl, send_at=later)
    assert r.status_code == 202 and r.json["status"] == "scheduled"
    work()
    assert api.get(f"/v1/messages/{r.json['id']}").json["status"] == "scheduled"
    canceled = api.post(f"/v1/messages/{r.json['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json["status"] == "canceled"
    again = api.post(f"/v1/messages/{r.json['id']}/cancel")
    assert (again.status_code, again.json["error"]) == (409, "invalid_state")
    assert api.get("/v1/sandbox/outbox").json["data"] == []


def test_scheduled_message_goes_out_when_due(api, approved_template, work):
    tpl = approved_template()
    soon = datetime.now(UTC) + timedelta(seconds=2)
    r = send(api, tpl, send_at=soon.isoformat())
    work()
    assert api.get(f"/v1/messages/{r.json['id']}").json["status"] == "scheduled"
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    work()
    m = api.get(f"/v1/messages/{r.json['id']}").json
    assert timeline(m) == ["scheduled", "queued", "sending", "sent", "delivered"]


def test_list_filters_and_paginates(api, approved_template):
    tpl = approved_template()
    ids = [send(api, tpl, client_ref=f"ref-{i}").json["id"] for i in range(5)]
    send(api, tpl, to="+442071838750", client_ref="uk")
    page1 = api.get("/v1/messages", query_string={"limit": 2, "to": TO}).json
    page2 = api.get("/v1/messages", query_string={"limit": 2, "to": TO, "cursor": page1["next_cursor"]}).json
    page3 = api.get("/v1/messages", query_string={"limit": 2, "to": TO, "cursor": page2["next_cursor"]}).json
    seen = [m["id"] for m in page1["data"] + page2["data"] + page3["data"]]
    assert seen == list(reversed(ids)) and page3["next_cursor"] is None
    assert [
        m["client_ref"] for m in api.get("/v1/messages", query_string={"client_ref": "uk"}).json["data"]
    ] == ["uk"]
    assert len(api.get("/v1/messages", query_string={"status": "queued"}).json["data"]) == 6
    assert api.get("/v1/messages", query_string={"status": "delivered"}).json["data"] == []
    assert api.get("/v1/messages", query_string={"limit": 0}).json["error"] == "validation_error"


def test_status_callbacks_are_signed_and_retried(api, approved_template, work, receiver):
    secret = api.post("/v1/app/webhook-secret").json["webhook_secret"]
    tpl = approved_template()
    receiver.fail_first = 3  # the app's endpoint is down at first
    r = send(api, tpl, status_callback=receiver.url)
    work()  # RQ retries the refused callbacks with backoff
    refused = [req for req in receiver.requests if req["answered"] == 500]
    accepted = [req for req in receiver.requests if req["answered"] == 200]
    assert len(refused) == 3
    assert sorted(req["json"]["status"] for req in accepted) == ["delivered", "sending", "sent"]
    for req in receiver.requests:
        assert req["json"]["id"] == r.json["id"]
        assert callbacks.verify(secret, req["raw"], req["headers"]["Comms-Signature"])
        assert not callbacks.verify("whsec_wrong", req["raw"], req["headers"]["Comms-Signature"])


def test_app_default_status_callback_is_used(api, approved_template, work, receiver):
    api.patch("/v1/app", {"status_callback": receiver.url})
    tpl = approved_template()
    r = send(api, tpl)
    work()
    assert {req["json"]["status"] for req in receiver.requests} == {"sending", "sent", "delivered"}
    assert all(req["json"]["id"] == r.json["id"] for req in receiver.requests)


def test_the_sender_given_is_the_sender_used(api, approved_template, work):
    tpl = approved_template()
    r = send(api, tpl, **{"from": "+15005550006"})
    assert r.json["from"] == "+15005550006"
    batch = api.post(
        "/v1/messages/batch",
        {"template_id": tpl["id"], "from": "Shop", "messages": [{"to": TO, "params": PARAMS}]},
    ).json
    work()
    assert api.get(f"/v1/messages/{batch['messages'][0]['id']}").json["from"] == "Shop"
    assert {o["from"] for o in api.get("/v1/sandbox/outbox").json["data"]} == {"+15005550006", "Shop"}
