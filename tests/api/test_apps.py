"""The calling app's settings, keys and admin powers."""

from __future__ import annotations

from comms.models import ApiKey, App


def test_get_and_patch_own_settings(api):
    me = api.get("/v1/app").json
    assert me["id"] == api.app_id
    assert me["verification"]["code_length"] == 6 and me["verification"]["max_checks"] == 5
    assert me["allow_free_text"] is False and me["allowed_countries"] == []
    r = api.patch(
        "/v1/app",
        {
            "status_callback": "https://example.test/hook",
            "allowed_countries": ["us", "GB"],
            "verification": {"code_length": 8},
        },
    )
    assert r.status_code == 200, r.json
    assert r.json["allowed_countries"] == ["GB", "US"]
    assert r.json["verification"]["code_length"] == 8 and r.json["verification"]["code_ttl"] == 600
    assert api.get("/v1/app").json["status_callback"] == "https://example.test/hook"


def test_bad_settings_are_refused(api):
    for body in (
        {"verification": {"code_length": 3}},
        {"allowed_countries": ["USA"]},
        {"status_callback": "ftp://x"},
        {"allow_free_text": True},
    ):
        r = api.patch("/v1/app", body)
        assert (r.status_code, r.json["error"]) == (400, "validation_error"), body


def test_keys_are_stored_hashed(api, runtime):
    with runtime.db.session() as session:
        stored = session.query(ApiKey).filter_by(app_id=api.app_id).one()
        assert api.key not in {stored.key_hash, stored.prefix}
        assert len(stored.key_hash) == 64


def test_webhook_secret_rotates(api, runtime):
    first = api.post("/v1/app/webhook-secret").json["webhook_secret"]
    second = api.post("/v1/app/webhook-secret").json["webhook_secret"]
    assert first != second and second.startswith("whsec_")
    with runtime.db.session() as session:
        assert session.get(App, api.app_id).webhook_secret == second


def test_admin_manages_apps_and_app_keys_cannot(api, admin_api, client):
    assert api.get("/v1/apps").status_code == 403
    created = admin_api.post("/v1/apps", {"name": "newco"})
    assert created.status_code == 201
    key = created.json["api_key"]
    me = client.get("/v1/app", headers={"Authorization": f"Bearer {key}"}).json
    assert me["name"] == "newco"
    assert admin_api.get(f"/v1/apps/{api.app_id}").json["name"] == "shop"
    assert admin_api.get("/v1/apps/app_missing").status_code == 404


def test_rotated_key_stops_working(api, runtime, client):
    from comms.services import apps

    with runtime.db.session() as session:
        new_key = apps.rotate_key(session, session.get(App, api.app_id))
    assert api.get("/v1/app").status_code == 401
    assert client.get("/v1/app", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200


def test_health_probes(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"database": "ok", "redis": "ok"}
