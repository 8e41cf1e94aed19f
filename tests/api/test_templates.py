"""Templates: variables, encoding and segments as carriers bill them, and admin approval."""

from __future__ import annotations

import pytest


def create(api, body, name="t", kind="notification", **extra):
    return api.post("/v1/templates", {"name": name, "kind": kind, "body": body, **extra})


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters count two septets
        ("€" * 81, "GSM-7", 2),
        ("[]{}~^|\\" * 10, "GSM-7", 1),
        ("[]{}~^|\\" * 10 + "a", "GSM-7", 2),
        ("中" * 70, "UCS-2", 1),
        ("中" * 71, "UCS-2", 2),
        ("中" * 134, "UCS-2", 2),
        ("中" * 135, "UCS-2", 3),
        ("Hi 👋", "UCS-2", 1),
    ],
)
def test_encoding_and_segments_are_billed_like_carriers(api, body, encoding, segments):
    r = create(api, body)
    assert r.status_code == 201, r.json
    assert (r.json["encoding"], r.json["segments"]) == (encoding, segments)


def test_variables_and_placeholder_lengths(api):
    r = create(api, "Hello {{ name }}, code {{code}} for {{name}}", locale="en", brand="Shop")
    assert r.json["variables"] == ["name", "code"]
    assert r.json["status"] == "pending"
    assert (r.json["locale"], r.json["brand"]) == ("en", "Shop")
    # 151 literal characters + a typical 10-letter value for {{name}} spill into a second part.
    assert create(api, "a" * 151 + "{{name}}", name="long").json["segments"] == 2


def test_verification_templates_have_exactly_one_code_variable(api):
    assert create(api, "Your code is {{code}}", kind="verification").status_code == 201
    for i, body in enumerate(["No code here", "{{code}} for {{name}}", "Your pin {{pin}}"]):
        r = create(api, body, name=f"v{i}", kind="verification")
        assert (r.status_code, r.json["error"]) == (400, "validation_error"), body
        assert "body" in r.json["errors"]


def test_approval_is_for_admin_keys_and_an_edit_sends_it_back(api, admin_api):
    tpl = create(api, "Hi {{name}}").json
    refused = api.post(f"/v1/templates/{tpl['id']}/approve")
    assert (refused.status_code, refused.json["error"]) == (403, "forbidden")
    approved = admin_api.post(f"/v1/templates/{tpl['id']}/approve").json
    assert approved["status"] == "approved"
    renamed = api.patch(f"/v1/templates/{tpl['id']}", {"brand": "Shop"}).json
    assert renamed["status"] == "approved"  # metadata only
    edited = api.patch(f"/v1/templates/{tpl['id']}", {"body": "Hello {{name}}!"}).json
    assert edited["status"] == "pending"
    rejected = admin_api.post(f"/v1/templates/{tpl['id']}/reject", {"reason": "brand missing"}).json
    assert (rejected["status"], rejected["reject_reason"]) == ("rejected", "brand missing")


def test_auto_approval_setting(make_settings, backing):
    from comms import create_app
    from comms.runtime import Runtime
    from comms.services import apps

    rt = Runtime(make_settings(auto_approve_templates=True))
    with rt.db.session() as session:
        _, key = apps.create_app(session, "auto")
    client = create_app(runtime=rt).test_client()
    r = client.post(
        "/v1/templates",
        json={"name": "a", "kind": "notification", "body": "x"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.json["status"] == "approved"
    rt.close()


def test_names_are_unique_per_app_and_crud(api, new_app):
    first = create(api, "one", name="dup").json
    again = create(api, "two", name="dup")
    assert (again.status_code, again.json["error"]) == (409, "name_taken")
    assert create(new_app("other"), "mine", name="dup").status_code == 201  # another app's namespace
    assert [t["id"] for t in api.get("/v1/templates").json["data"]] == [first["id"]]
    assert api.get(f"/v1/templates/{first['id']}").json["body"] == "one"
    assert api.delete(f"/v1/templates/{first['id']}").status_code == 204
    assert api.get(f"/v1/templates/{first['id']}").status_code == 404


def test_bad_template_input(api):
    assert create(api, "x", kind="spam").json["error"] == "validation_error"
    assert create(api, "x", channel="fax").json["error"] == "validation_error"
    assert create(api, "", name="empty").json["error"] == "validation_error"
    assert create(api, "x", name="has space").json["error"] == "validation_error"
