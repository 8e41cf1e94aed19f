"""Routing with failover across carriers, and per-sender pacing shared by all workers."""

from __future__ import annotations

import time

import pytest

from comms.pacing import Pacer
from comms.runtime import Runtime
from workers import runner

ROUTES = (
    {"prefix": "", "carrier": "primary", "priority": 1},
    {"prefix": "", "carrier": "secondary", "priority": 2},
)


@pytest.fixture
def two_carriers(make_settings, runtime):
    rt = Runtime(
        make_settings(
            carriers={
                "primary": {"type": "sandbox", "delivery_delay": 0},
                "secondary": {"type": "sandbox", "delivery_delay": 0},
            },
            routes=ROUTES,
            carrier_failure_threshold=3,
            carrier_cooldown=0.5,
        )
    )
    yield rt
    rt.close()


def send_batch(client, key, template_id, count):
    entries = [{"to": f"+1415555{3000 + i}"} for i in range(count)]
    r = client.post(
        "/v1/messages/batch",
        json={"template_id": template_id, "messages": entries},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 202, r.json
    return [m["id"] for m in r.json["messages"]]


def setup_app(rt):
    from comms import create_app
    from comms.services import apps, templates

    with rt.db.session() as session:
        app, key = apps.create_app(session, "shop")
        tpl = templates.create(
            session,
            app.id,
            {"name": "n", "kind": "notification", "channel": "sms", "body": "Your parcel is here"},
            auto_approve=True,
        )
    return create_app(runtime=rt).test_client(), key, tpl.id


def messages_by_status(client, key):
    data = client.get(
        "/v1/messages", query_string={"limit": 1000}, headers={"Authorization": f"Bearer {key}"}
    ).json["data"]
    return data


def outbox(rt, carrier, app_id_key):
    return rt.carriers[carrier].outbox(app_id_key, limit=1000)


def test_primary_failing_moves_traffic_to_the_secondary(two_carriers, caplog):
    rt = two_carriers
    client, key, template_id = setup_app(rt)
    rt.carriers["primary"].config["transient_failure_rate"] = 1.0  # answers 503s
    ids = send_batch(client, key, template_id, 20)
    runner.make_worker(rt).work(burst=True, with_scheduler=True, logging_level="WARNING")
    for _ in range(20):
        from comms.services import sweeper

        sweeper.sweep(rt)
    data = messages_by_status(client, key)
    assert sorted(m["id"] for m in data) == sorted(ids)
    assert {m["status"] for m in data} == {"delivered"}
    assert {m["carrier"] for m in data} == {"secondary"}
    # The circuit opened after three failures in a row (the cool-down itself is short in this test).
    assert any("carrier primary failed 3 times in a row" in r.getMessage() for r in caplog.records)
    app_id = client.get("/v1/app", headers={"Authorization": f"Bearer {key}"}).json["id"]
    assert outbox(rt, "primary", app_id) == []
    assert len(outbox(rt, "secondary", app_id)) == 20


def test_all_routes_down_then_one_recovers_delivers_every_message_once(two_carriers):
    rt = two_carriers
    client, key, template_id = setup_app(rt)
    for name in ("primary", "secondary"):
        rt.carriers[name].config["transient_failure_rate"] = 1.0
    ids = send_batch(client, key, template_id, 12)
    worker = runner.make_worker(rt)
    worker.work(burst=True, with_scheduler=True, logging_level="WARNING")  # retries spent against the outage
    data = messages_by_status(client, key)
    assert {m["status"] for m in data} == {"sending"}  # waiting, not failed
    assert any(
        "every route is down" in (e["detail"] or "")
        for e in client.get(f"/v1/messages/{ids[0]}", headers={"Authorization": f"Bearer {key}"}).json[
            "events"
        ]
    )

    rt.carriers["secondary"].config["transient_failure_rate"] = 0.0  # the secondary comes back
    from comms.services import sweeper

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.2)
        sweeper.sweep(rt)
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        sweeper.sweep(rt)
        data = messages_by_status(client, key)
        if {m["status"] for m in data} == {"delivered"}:
            break
    assert {m["status"] for m in data} == {"delivered"}, [m["status"] for m in data]
    app_id = client.get("/v1/app", headers={"Authorization": f"Bearer {key}"}).json["id"]
    sent = outbox(rt, "primary", app_id) + outbox(rt, "secondary", app_id)
    assert sorted(o["reference"] for o in sent) == sorted(ids)  # each exactly once


def test_a_permanent_error_does_not_fail_over(two_carriers):
    rt = two_carriers
    client, key, template_id = setup_app(rt)
    r = client.post(
        "/v1/messages",
        json={"to": "+15005550004", "template_id": template_id},
        headers={"Authorization": f"Bearer {key}"},
    )
    runner.make_worker(rt).work(burst=True, with_scheduler=True, logging_level="WARNING")
    m = client.get(f"/v1/messages/{r.json['id']}", headers={"Authorization": f"Bearer {key}"}).json
    assert (m["status"], m["error"], m["carrier"]) == ("failed", "recipient_opted_out", "primary")


def test_pacer_spaces_a_senders_slots_on_a_controlled_clock(runtime):
    now = [1000.0]
    waits = []
    pacer = Pacer(runtime.redis, clock=lambda: now[0], sleep=waits.append)
    slots = [pacer.reserve("twilio", "+15005550006", 2) for _ in range(4)]
    assert slots == [1000.0, 1000.5, 1001.0, 1001.5]
    assert pacer.reserve("twilio", "+15005550007", 2) == 1000.0  # another sender has its own pace
    now[0] = 1010.0  # idle for a while: no debt carried over
    assert pacer.wait("twilio", "+15005550006", 2) == 0.0 and waits == []
    assert pacer.wait("twilio", "+15005550006", 2) == pytest.approx(0.5)
    assert waits == [pytest.approx(0.5)]


def test_all_workers_together_keep_a_senders_rate(make_settings, runtime):
    rt = Runtime(make_settings(sandbox={"from": "+15005550006", "senders": {"+15005550006": 20}}))
    client, key, template_id = setup_app(rt)
    send_batch(client, key, template_id, 30)
    runner.make_worker(rt).work(burst=True, with_scheduler=True, logging_level="WARNING")
    app_id = client.get("/v1/app", headers={"Authorization": f"Bearer {key}"}).json["id"]
    stamps = sorted(o["at"] for o in outbox(rt, "sandbox", app_id))
    assert len(stamps) == 30
    assert stamps[-1] - stamps[0] >= 29 / 20 - 0.05  # 20 a second, even with 16 threads sending
    assert max(sum(1 for t in stamps if start <= t < start + 1) for start in stamps) <= 21
    rt.close()
