"""The bulk path: one template to many recipients, each entry judged on its own."""

from __future__ import annotations

TO = "+14155552671"


def test_batch_accepts_good_entries_and_rejects_bad_ones_with_their_error(api, approved_template, work):
    tpl = approved_template("Your parcel {{order}} is on its way")
    entries = [
        {"to": f"+1415555{2600 + i}", "params": {"order": f"P{i}"}, "client_ref": f"p{i}"} for i in range(250)
    ]
    entries[3] = {"to": "+1 000", "params": {"order": "bad"}}
    entries[7] = {"to": TO, "params": {}}
    entries[9] = {"to": TO, "params": {"order": "x", "extra": "y"}}
    entries[11] = {"params": {"order": "x"}}
    r = api.post("/v1/messages/batch", {"template_id": tpl["id"], "messages": entries})
    assert r.status_code == 202, r.json
    assert r.json["accepted"] == 246
    assert [(x["index"], x["error"]) for x in r.json["rejected"]] == [
        (3, "invalid_phone_number"),
        (7, "missing_params"),
        (9, "unexpected_params"),
        (11, "invalid_phone_number"),
    ]
    assert all(x["message"] for x in r.json["rejected"])
    accepted = r.json["messages"]
    assert accepted[0] == {"index": 0, "id": accepted[0]["id"], "to": "+14155552600", "status": "queued"}

    work()

    delivered = api.get("/v1/messages", query_string={"status": "delivered", "limit": 1000}).json["data"]
    assert sorted(m["id"] for m in delivered) == sorted(a["id"] for a in accepted)
    assert len(api.get("/v1/sandbox/outbox", query_string={"limit": 1000}).json["data"]) == 246
    fifth = next(a for a in accepted if a["index"] == 5)
    one = api.get(f"/v1/messages/{fifth['id']}").json
    assert one["body"] == "Your parcel P5 is on its way" and one["client_ref"] == "p5"


def test_batch_with_an_unknown_or_unapproved_template_creates_nothing(api, work):
    r = api.post("/v1/messages/batch", {"template": "ghost", "messages": [{"to": TO, "params": {}}]})
    assert (r.status_code, r.json["error"]) == (400, "template_not_found")
    api.post("/v1/templates", {"name": "draft", "kind": "notification", "body": "Hi"})
    r = api.post("/v1/messages/batch", {"template": "draft", "messages": [{"to": TO, "params": {}}]})
    assert (r.status_code, r.json["error"]) == (400, "template_not_approved")
    assert api.get("/v1/messages").json["data"] == []


def test_batch_limits_and_shape(api, approved_template):
    tpl = approved_template("Hello")
    too_many = api.post("/v1/messages/batch", {"template_id": tpl["id"], "messages": [{"to": TO}] * 1001})
    assert (too_many.status_code, too_many.json["error"]) == (400, "validation_error")
    assert "messages" in too_many.json["errors"]
    empty = api.post("/v1/messages/batch", {"template_id": tpl["id"], "messages": []})
    assert empty.status_code == 400
    no_template = api.post("/v1/messages/batch", {"messages": [{"to": TO}]})
    assert no_template.status_code == 400 and no_template.json["error"] == "validation_error"


def test_batch_is_idempotent(api, approved_template, work):
    tpl = approved_template("Hello")
    body = {"template_id": tpl["id"], "messages": [{"to": TO}, {"to": "+14155552672"}]}
    first = api.post("/v1/messages/batch", body, headers={"Idempotency-Key": "b1"})
    again = api.post("/v1/messages/batch", body, headers={"Idempotency-Key": "b1"})
    assert first.json == again.json
    work()
    assert len(api.get("/v1/sandbox/outbox").json["data"]) == 2


def test_a_malformed_entry_is_rejected_on_its_own(api, approved_template):
    tpl = approved_template("Hi {{name}}")
    entries = [
        {"to": TO, "params": {"name": "A"}},
        {"to": TO, "params": {"name": ["A"]}},
        {"to": TO, "params": {"name": "A"}, "colour": "red"},
        {"to": TO, "params": {"name": "A"}, "client_ref": "x" * 201},
    ]
    r = api.post("/v1/messages/batch", {"template_id": tpl["id"], "messages": entries})
    assert r.status_code == 202
    assert r.json["accepted"] == 1
    assert [(x["index"], x["error"]) for x in r.json["rejected"]] == [
        (1, "validation_error"),
        (2, "validation_error"),
        (3, "validation_error"),
    ]
    not_objects = api.post("/v1/messages/batch", {"template_id": tpl["id"], "messages": ["+14155552671"]})
    assert (not_objects.status_code, not_objects.json["error"]) == (400, "validation_error")
