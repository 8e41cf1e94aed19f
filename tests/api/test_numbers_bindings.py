"""Proxy numbers (admin) and bindings over HTTP: choosing numbers, tenancy, release, update, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from comms.models import Binding, BindingParty, ProxyNumber
from comms.services import bindings

COURIER = "+14155550101"
CUSTOMER = "+14155550102"
OTHER = "+14155550103"


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"+1202555{1000 + start + i:04d}" for i in range(n)]


@pytest.fixture
def pool(admin_api):
    """``pool(count, name="default", capabilities=…) -> [numbers]``, added with the admin key."""

    def add(
        count: int = 3, name: str = "default", capabilities=("voice", "sms"), start: int = 0
    ) -> list[str]:
        added = numbers(count, start)
        for number in added:
            r = admin_api.post(
                "/v1/numbers",
                {"number": number, "carrier": "sandbox", "pool": name, "capabilities": list(capabilities)},
            )
            assert r.status_code == 201, r.json
        return added

    return add


def bind(api, a=COURIER, b=CUSTOMER, **extra):
    return api.post("/v1/bindings", {"party_a": a, "party_b": b, **extra})


def overdue(runtime, binding_id: str) -> None:
    """Put a binding's expiry in the past without marking it, as if its time had just run out."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    with runtime.db.session() as session:
        session.execute(update(Binding).where(Binding.id == binding_id).values(expires_at=past))
        session.execute(
            update(BindingParty).where(BindingParty.binding_id == binding_id).values(expires_at=past)
        )


def active_counts(runtime) -> dict[str, int]:
    with runtime.db.session() as session:
        return dict(session.execute(select(ProxyNumber.number, ProxyNumber.active_bindings)).all())


# -- numbers ----------------------------------------------------------------------------------


def test_admin_keys_manage_numbers(admin_api, api):
    r = admin_api.post(
        "/v1/numbers", {"number": "+1 (202) 555-1000", "carrier": "sandbox", "pool": "couriers"}
    )
    assert r.status_code == 201, r.json
    assert r.json["number"] == "+12025551000"
    assert r.json["capabilities"] == ["voice", "sms"] and r.json["active_bindings"] == 0
    assert r.json["pool"] == "couriers"
    listed = admin_api.get("/v1/numbers?pool=couriers").json
    assert [n["number"] for n in listed["data"]] == ["+12025551000"]
    assert admin_api.get("/v1/numbers/+12025551000").json["carrier"] == "sandbox"
    for call in (
        lambda: api.post("/v1/numbers", {"number": "+12025551001", "carrier": "sandbox"}),
        lambda: api.get("/v1/numbers"),
        lambda: api.delete("/v1/numbers/+12025551000"),
    ):
        r = call()
        assert (r.status_code, r.json["error"]) == (403, "forbidden")
    assert admin_api.delete("/v1/numbers/%2B12025551000").status_code == 204
    assert admin_api.get("/v1/numbers").json["data"] == []
    assert admin_api.delete("/v1/numbers/+12025551000").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        ({"number": "12345", "carrier": "sandbox"}, 400, "invalid_phone_number", "number"),
        ({"number": "+12025551000", "carrier": "nope"}, 400, "unknown_carrier", "carrier"),
        (
            {"number": "+12025551000", "carrier": "sandbox", "capabilities": ["fax"]},
            400,
            "validation_error",
            "capabilities",
        ),
        (
            {"number": "+12025551000", "carrier": "sandbox", "capabilities": []},
            400,
            "validation_error",
            "capabilities",
        ),
        ({"number": "+12025551000", "carrier": "sandbox", "pool": "a b"}, 400, "validation_error", "pool"),
        ({"carrier": "sandbox"}, 400, "validation_error", "number"),
    ],
)
def test_bad_numbers_are_refused_with_a_stable_error(admin_api, body, status, error, field):
    r = admin_api.post("/v1/numbers", body)
    assert (r.status_code, r.json["error"]) == (status, error), r.json
    assert field in r.json["errors"]
    assert admin_api.get("/v1/numbers").json["data"] == []


def test_a_number_is_registered_once(admin_api):
    assert admin_api.post("/v1/numbers", {"number": "+12025551000", "carrier": "sandbox"}).status_code == 201
    again = admin_api.post("/v1/numbers", {"number": "+1 202 555 1000", "carrier": "sandbox"})
    assert (again.status_code, again.json["error"]) == (409, "number_exists")


def test_a_number_in_use_is_kept_until_released(admin_api, api, pool):
    (number,) = pool(1)
    b = bind(api).json
    r = admin_api.delete(f"/v1/numbers/{number}")
    assert (r.status_code, r.json["error"]) == (409, "number_in_use")
    assert admin_api.delete(f"/v1/numbers/{number}?release=true").status_code == 204
    assert api.get(f"/v1/bindings/{b['id']}").json["status"] == "released"


def test_an_overdue_binding_does_not_hold_its_number(admin_api, api, pool, runtime):
    (number,) = pool(1)
    overdue(runtime, bind(api).json["id"])
    assert admin_api.delete(f"/v1/numbers/{number}").status_code == 204


# -- creating bindings ---------------------------------------------------------------------


def test_a_binding_gets_a_proxy_number_and_normalised_parties(api, pool):
    added = pool(2)
    r = bind(api, "+1 415-555-0101", "(+1) 415 555 0102", ttl=3600, client_ref="order-7", record=True)
    assert r.status_code == 201, r.json
    b = r.json
    assert b["id"].startswith("bnd_") and b["status"] == "active"
    assert (b["party_a"], b["party_b"]) == (COURIER, CUSTOMER)
    assert b["proxy_number"] in added and b["record"] is True and b["client_ref"] == "order-7"
    expires = datetime.fromisoformat(b["expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=3590) < expires - datetime.now(UTC) <= timedelta(seconds=3600)
    assert api.get(f"/v1/bindings/{b['id']}").json == b


def test_the_default_ttl_is_a_day_and_expires_at_may_be_given(api, pool):
    pool(2)
    default = bind(api).json
    expires = datetime.fromisoformat(default["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - datetime.now(UTC) - timedelta(days=1)) < timedelta(seconds=10)
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    explicit = bind(api, OTHER, CUSTOMER, expires_at=at.isoformat().replace("+00:00", "Z")).json
    assert explicit["expires_at"] == at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({"party_a": "12", "party_b": CUSTOMER}, "invalid_phone_number", "party_a"),
        ({"party_a": COURIER, "party_b": "+1415"}, "invalid_phone_number", "party_b"),
        ({"party_a": COURIER, "party_b": 14155550102}, "validation_error", "party_b"),
        ({"party_a": COURIER, "party_b": "+1 415 555 0101"}, "same_party", "party_b"),
        ({"party_a": COURIER}, "validation_error", "party_b"),
        ({"party_a": COURIER, "party_b": CUSTOMER, "ttl": 0}, "validation_error", "ttl"),
        ({"party_a": COURIER, "party_b": CUSTOMER, "ttl": "soon"}, "validation_error", "ttl"),
        (
            {"party_a": COURIER, "party_b": CUSTOMER, "ttl": 60, "expires_at": "2030-01-01T00:00:00Z"},
            "validation_error",
            "ttl",
        ),
        (
            {"party_a": COURIER, "party_b": CUSTOMER, "expires_at": "2001-01-01T00:00:00Z"},
            "validation_error",
            "expires_at",
        ),
        (
            {"party_a": COURIER, "party_b": CUSTOMER, "expires_at": "2030-01-01T00:00:00"},
            "validation_error",
            "expires_at",
        ),
        ({"party_a": COURIER, "party_b": CUSTOMER, "pool": "no spaces"}, "validation_error", "pool"),
        (
            {"party_a": COURIER, "party_b": CUSTOMER, "capabilities": ["fax"]},
            "validation_error",
            "capabilities",
        ),
        ({"party_a": COURIER, "party_b": CUSTOMER, "surprise": 1}, "validation_error", "surprise"),
    ],
)
def test_bad_bindings_are_400_and_write_nothing(api, pool, runtime, body, error, field):
    pool(1)
    r = api.post("/v1/bindings", body)
    assert (r.status_code, r.json["error"]) == (400, error), r.json
    assert field in r.json["errors"]
    assert api.get("/v1/bindings").json["data"] == []
    assert set(active_counts(runtime).values()) == {0}


def test_a_country_the_app_may_not_reach_is_refused(api, pool):
    pool(1)
    api.patch("/v1/app", {"allowed_countries": ["GB"]})
    r = bind(api)
    assert (r.status_code, r.json["error"]) == (403, "country_not_allowed")


def test_one_number_serves_many_pairs_but_never_a_party_twice(api, pool, runtime):
    (only,) = pool(1)
    first = bind(api, COURIER, CUSTOMER).json
    second = bind(api, OTHER, "+14155550104").json
    assert first["proxy_number"] == second["proxy_number"] == only
    clash = bind(api, COURIER, "+14155550105")
    assert (clash.status_code, clash.json["error"]) == (409, "pool_exhausted")
    clash_b = bind(api, "+14155550106", CUSTOMER)
    assert (clash_b.status_code, clash_b.json["error"]) == (409, "pool_exhausted")
    assert active_counts(runtime) == {only: 2}


def test_numbers_are_chosen_least_used_first(api, pool, runtime):
    added = pool(4)
    for i in range(12):
        assert bind(api, f"+1415555{2000 + i:04d}", f"+1415555{3000 + i:04d}").status_code == 201
    assert active_counts(runtime) == dict.fromkeys(added, 3)


def test_a_party_gets_a_different_number_per_binding(api, pool):
    added = pool(3)
    chosen = [bind(api, COURIER, f"+1415555{3000 + i:04d}").json["proxy_number"] for i in range(3)]
    assert sorted(chosen) == sorted(added)
    r = bind(api, COURIER, "+14155553999")
    assert (r.status_code, r.json["error"]) == (409, "pool_exhausted")


def test_pools_and_capabilities_select_numbers(api, pool):
    (sms_only,) = pool(1, name="texts", capabilities=("sms",))
    (full,) = pool(1, name="texts", start=10)
    (other_pool,) = pool(1, name="riders", start=20)
    assert bind(api, pool="riders").json["proxy_number"] == other_pool
    assert bind(api, pool="texts").json["proxy_number"] == full  # voice and sms by default
    assert bind(api, pool="texts", capabilities=["sms"]).json["proxy_number"] == sms_only
    r = bind(api, pool="empty")
    assert (r.status_code, r.json["error"]) == (409, "pool_exhausted")


def test_no_numbers_at_all_is_pool_exhausted(api):
    r = bind(api)
    assert (r.status_code, r.json["error"]) == (409, "pool_exhausted")
    assert r.json["code"] == 409 and r.json["message"]


# -- tenancy, reading, listing -------------------------------------------------------------


def test_another_apps_binding_is_404(api, new_app, pool):
    pool(1)
    b = bind(api).json
    other = new_app("elsewhere")
    for r in (
        other.get(f"/v1/bindings/{b['id']}"),
        other.delete(f"/v1/bindings/{b['id']}"),
        other.patch(f"/v1/bindings/{b['id']}", {"ttl": 60}),
        other.get(f"/v1/bindings/{b['id']}/interactions"),
    ):
        assert (r.status_code, r.json["error"]) == (404, "binding_not_found")
    assert other.get("/v1/bindings").json["data"] == []
    assert api.get(f"/v1/bindings/{b['id']}").json["status"] == "active"


def test_listing_filters_and_pages(api, pool, runtime):
    pool(3)
    made = [bind(api, COURIER, f"+1415555{3000 + i:04d}", client_ref=f"order-{i}").json for i in range(3)]
    api.delete(f"/v1/bindings/{made[0]['id']}")
    overdue(runtime, made[1]["id"])
    assert [b["id"] for b in api.get("/v1/bindings?status=active").json["data"]] == [made[2]["id"]]
    assert [b["id"] for b in api.get("/v1/bindings?status=expired").json["data"]] == [made[1]["id"]]
    assert [b["id"] for b in api.get("/v1/bindings?status=released").json["data"]] == [made[0]["id"]]
    assert [b["id"] for b in api.get("/v1/bindings?client_ref=order-2").json["data"]] == [made[2]["id"]]
    assert len(api.get("/v1/bindings", query_string={"party": COURIER}).json["data"]) == 3
    on_number = api.get("/v1/bindings", query_string={"proxy_number": made[2]["proxy_number"]}).json["data"]
    assert [b["id"] for b in on_number] == [made[2]["id"]]
    page = api.get("/v1/bindings?limit=2").json
    assert [b["id"] for b in page["data"]] == [made[2]["id"], made[1]["id"]]
    rest = api.get(f"/v1/bindings?limit=2&cursor={page['next_cursor']}").json
    assert [b["id"] for b in rest["data"]] == [made[0]["id"]] and rest["next_cursor"] is None
    bad = api.get("/v1/bindings?status=sleeping")
    assert (bad.status_code, bad.json["error"]) == (400, "validation_error")


# -- release, update ------------------------------------------------------------------------


def test_release_frees_the_number_for_the_parties(api, pool, runtime):
    (number,) = pool(1)
    b = bind(api).json
    released = api.delete(f"/v1/bindings/{b['id']}")
    assert released.status_code == 200
    assert released.json["status"] == "released" and released.json["ended_at"]
    assert active_counts(runtime) == {number: 0}
    again = api.delete(f"/v1/bindings/{b['id']}")
    assert again.status_code == 200 and again.json == released.json
    assert bind(api).json["proxy_number"] == number


def test_patch_extends_the_expiry_and_swaps_a_party(api, pool, runtime):
    (number,) = pool(1)
    b = bind(api, ttl=60).json
    longer = api.patch(f"/v1/bindings/{b['id']}", {"ttl": 7200}).json
    assert longer["expires_at"] > b["expires_at"]
    swapped = api.patch(f"/v1/bindings/{b['id']}", {"party_b": "+1 415 555 0103", "record": True})
    assert swapped.status_code == 200, swapped.json
    assert (swapped.json["party_b"], swapped.json["record"], swapped.json["proxy_number"]) == (
        OTHER,
        True,
        number,
    )
    with runtime.db.session() as session:
        claims = session.execute(
            select(BindingParty.party, BindingParty.other_party, BindingParty.expires_at)
            .where(BindingParty.binding_id == b["id"])
            .order_by(BindingParty.party)
        ).all()
    assert [(p, o) for p, o, _ in claims] == [(COURIER, OTHER), (OTHER, COURIER)]
    stamps = {at.isoformat(timespec="milliseconds").replace("+00:00", "Z") for _, _, at in claims}
    assert stamps == {longer["expires_at"]}
    # The replaced customer no longer holds the number: a binding of theirs may use it.
    assert bind(api, "+14155550109", CUSTOMER).json["proxy_number"] == number
    assert active_counts(runtime) == {number: 2}


def test_patch_conflicts_and_bad_changes(api, pool, runtime):
    pool(1)
    b = bind(api).json
    bind(api, OTHER, "+14155550104")
    clash = api.patch(f"/v1/bindings/{b['id']}", {"party_b": OTHER})
    assert (clash.status_code, clash.json["error"]) == (409, "party_conflict")
    assert clash.json["errors"] == {"party_b": [clash.json["message"]]}
    same = api.patch(f"/v1/bindings/{b['id']}", {"party_b": COURIER})
    assert (same.status_code, same.json["error"]) == (400, "same_party")
    bad = api.patch(f"/v1/bindings/{b['id']}", {"party_a": "nope"})
    assert (bad.status_code, bad.json["error"]) == (400, "invalid_phone_number")
    past = api.patch(f"/v1/bindings/{b['id']}", {"expires_at": "2001-01-01T00:00:00Z"})
    assert (past.status_code, past.json["error"]) == (400, "validation_error")
    unchanged = api.get(f"/v1/bindings/{b['id']}").json
    assert (unchanged["party_b"], unchanged["expires_at"]) == (CUSTOMER, b["expires_at"])
    api.delete(f"/v1/bindings/{b['id']}")
    ended = api.patch(f"/v1/bindings/{b['id']}", {"ttl": 60})
    assert (ended.status_code, ended.json["error"]) == (409, "binding_not_active")


def test_a_party_swap_may_take_over_an_overdue_claim(api, pool, runtime):
    pool(1)
    b = bind(api).json
    old = bind(api, OTHER, "+14155550104").json
    overdue(runtime, old["id"])
    r = api.patch(f"/v1/bindings/{b['id']}", {"party_b": OTHER})
    assert r.status_code == 200, r.json
    assert api.get(f"/v1/bindings/{old['id']}").json["status"] == "expired"


# -- expiry ---------------------------------------------------------------------------------


def test_an_overdue_binding_is_expired_at_once_and_does_not_block(api, pool, runtime):
    (number,) = pool(1)
    b = bind(api).json
    overdue(runtime, b["id"])
    shown = api.get(f"/v1/bindings/{b['id']}").json
    assert shown["status"] == "expired" and shown["ended_at"] == shown["expires_at"]
    fresh = bind(api)  # the same parties, the only number: the overdue binding is out of the way
    assert fresh.status_code == 201, fresh.json
    assert fresh.json["proxy_number"] == number
    ended = api.get(f"/v1/bindings/{b['id']}").json
    assert ended["status"] == "expired" and ended["ended_at"] == ended["expires_at"]
    assert active_counts(runtime) == {number: 1}
    gone = api.patch(f"/v1/bindings/{b['id']}", {"ttl": 60})
    assert (gone.status_code, gone.json["error"]) == (409, "binding_not_active")


def test_the_periodic_job_marks_expired_bindings(api, pool, runtime):
    (number,) = pool(1)
    made = [bind(api, f"+1415555{4000 + i:04d}", f"+1415555{5000 + i:04d}") for i in range(5)]
    ids = [r.json["id"] for r in made]
    for binding_id in ids[:3]:
        overdue(runtime, binding_id)
    assert bindings.expire_due(runtime, batch=2) == 3
    assert bindings.expire_due(runtime) == 0
    with runtime.db.session() as session:
        statuses = dict(session.execute(select(Binding.id, Binding.status)).all())
        claims = session.scalar(select(BindingParty).where(BindingParty.binding_id == ids[0]))
    assert [statuses[i] for i in ids] == ["expired"] * 3 + ["active"] * 2
    assert claims is None
    assert active_counts(runtime) == {number: 2}
    # Time passing is enough, too.
    assert bindings.expire_due(runtime, now=datetime.now(UTC) + timedelta(days=2)) == 2
    assert active_counts(runtime) == {number: 0}


def test_ttl_runs_out_by_itself(api, pool, runtime):
    pool(1)
    b = bind(api, ttl=60).json
    later = datetime.now(UTC) + timedelta(seconds=61)
    with runtime.db.session() as session:
        binding = session.get(Binding, b["id"])
        assert bindings.effective_status(binding, later) == "expired"
        assert bindings.effective_status(binding) == "active"
