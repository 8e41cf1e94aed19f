"""Fraud guard: a country whose codes are sent but never used is paused for the app, and lifted."""

from __future__ import annotations

import re

import pytest

from comms.services import fraud_guard


def start(api, to, **extra):
    return api.post("/v1/verifications", {"to": to, **extra})


def check(api, code, to):
    return api.post("/v1/verifications/check", {"to": to, "code": code})


def outbox(api, to):
    return api.get("/v1/sandbox/outbox", query_string={"to": to}).json["data"]


def code_of(item) -> str:
    return re.search(r"(?<!\d)\d{4,10}(?!\d)", item["body"]).group()


def settings(api, **verification):
    assert api.patch("/v1/app", {"verification": verification}).status_code == 200


@pytest.fixture
def no_grace(monkeypatch):
    """Judge sends at once instead of after a minute (their codes could still come back)."""
    monkeypatch.setattr(fraud_guard, "GRACE", 0)


def gb(i: int) -> str:
    return f"+4474001234{i:02d}"


def us(i: int) -> str:
    return f"+1415555{i:04d}"


def test_low_conversion_pauses_the_country_and_an_admin_lifts_it(api, admin_api, work, no_grace):
    settings(api, fraud_guard_min_sends=5, fraud_guard_min_conversion=0.5)
    for i in range(6):  # the US converts: every code comes back
        assert start(api, to=us(i)).status_code == 201
        work()
        assert check(api, code_of(outbox(api, us(i))[0]), to=us(i)).json["valid"] is True
    for i in range(5):  # pumping: codes to GB premium numbers that nobody types in
        assert start(api, to=gb(i)).status_code == 201
    r = start(api, to=gb(5))
    assert (r.status_code, r.json["error"]) == (403, "country_paused")
    assert 43000 <= int(r.headers["Retry-After"]) <= 43200
    assert start(api, to=gb(6)).json["error"] == "country_paused"
    assert start(api, to=us(6)).status_code == 201  # other countries go on

    view = api.get("/v1/app/fraud-guard").json
    assert [(p["country"], p["sends"], p["approvals"], p["conversion"]) for p in view["paused"]] == [
        ("GB", 5, 0, 0.0)
    ]
    assert view["paused"][0]["paused_at"] and view["paused"][0]["lifted_at"] is None
    stats = {c["country"]: c for c in view["countries"]}
    assert (stats["US"]["sends"], stats["US"]["approvals"], stats["US"]["conversion"]) == (7, 6, 0.8571)
    assert admin_api.get(f"/v1/apps/{api.app_id}/fraud-guard").json["paused"] == view["paused"]

    refused = api.delete(f"/v1/apps/{api.app_id}/fraud-guard/GB")
    assert (refused.status_code, refused.json["error"]) == (403, "forbidden")
    lifted = admin_api.delete(f"/v1/apps/{api.app_id}/fraud-guard/gb")
    assert lifted.status_code == 200 and lifted.json["paused"] == []
    assert start(api, to=gb(5)).status_code == 201
    assert admin_api.delete(f"/v1/apps/{api.app_id}/fraud-guard/GB").status_code == 404
    work()
    assert len(outbox(api, gb(5))) == 1 and outbox(api, gb(6)) == []


def test_fresh_sends_are_not_judged_yet(api):
    # With the real grace period a burst of new codes cannot trip the guard before users type them in.
    settings(api, fraud_guard_min_sends=3, fraud_guard_min_conversion=0.5)
    for i in range(10):
        assert start(api, to=gb(i)).status_code == 201
    assert api.get("/v1/app/fraud-guard").json["paused"] == []


def test_a_disabled_guard_counts_but_never_pauses(api, no_grace):
    settings(api, fraud_guard=False, fraud_guard_min_sends=2)
    for i in range(5):
        assert start(api, to=gb(i)).status_code == 201
    view = api.get("/v1/app/fraud-guard").json
    assert view["enabled"] is False and view["paused"] == []
    assert [(c["country"], c["sends"], c["approvals"]) for c in view["countries"]] == [("GB", 5, 0)]


def test_a_pause_is_per_app(api, new_app, no_grace):
    other = new_app("other")
    settings(api, fraud_guard_min_sends=2, fraud_guard_min_conversion=0.5)
    for i in range(2):
        start(api, to=gb(i))
    assert start(api, to=gb(2)).json["error"] == "country_paused"
    assert start(other, to=gb(2)).status_code == 201
    assert other.get("/v1/app/fraud-guard").json["paused"] == []


def test_admin_views_need_an_admin_key(api, admin_api):
    assert api.get(f"/v1/apps/{api.app_id}/fraud-guard").status_code == 403
    assert admin_api.get("/v1/apps/app_nope/fraud-guard").status_code == 404
    assert admin_api.delete(f"/v1/apps/{api.app_id}/fraud-guard/GB").json["error"] == "not_found"
