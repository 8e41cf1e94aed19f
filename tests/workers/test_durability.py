"""Nothing accepted is lost: a worker killed mid-delivery, Redis down at accept time, Redis restarted."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comms import create_app
from comms.redis_conn import EmbeddedRedis
from comms.runtime import Runtime
from comms.services import apps, sweeper
from workers import runner

ROOT = Path(__file__).resolve().parents[2]
TO = "+14155552671"


def wait_for(predicate, timeout=30.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


def start_worker(backing, tmp_path, config_file):
    env = {
        **os.environ,
        "COMMS_DATABASE_URL": backing["database_url"],
        "COMMS_REDIS_URL": backing["redis_url"],
        "COMMS_CONFIG": str(config_file),
        "COMMS_CLAIM_TIMEOUT": "4",
        "COMMS_SWEEP_INTERVAL": "0.2",
        "COMMS_REQUEUE_AFTER": "0.5",
        "COMMS_SECRET_KEY": "test-secret-key",
        "COMMS_HOME": str(tmp_path),
        "COMMS_LOG_LEVEL": "WARNING",
    }
    # Its own process group: RQ forks a scheduler process that killing the worker alone would orphan.
    return subprocess.Popen(
        [sys.executable, "-m", "comms.cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_worker_killed_mid_delivery_does_not_lose_the_message(api, approved_template, backing, tmp_path):
    config = tmp_path / "comms.toml"
    config.write_text('[carriers.sandbox]\ntype = "sandbox"\nlatency = 2.5\ndelivery_delay = 0\n')
    tpl = approved_template("Hello {{name}}")
    message_id = api.post("/v1/messages", {"to": TO, "template_id": tpl["id"], "params": {"name": "A"}}).json[
        "id"
    ]

    first = start_worker(backing, tmp_path, config)
    try:
        wait_for(lambda: api.get(f"/v1/messages/{message_id}").json["status"] == "sending")
        time.sleep(0.3)  # inside the carrier hand-off
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(5)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group's forked scheduler too
            os.killpg(first.pid, signal.SIGKILL)
    assert api.get(f"/v1/messages/{message_id}").json["status"] == "sending"

    second = start_worker(backing, tmp_path, config)
    try:
        message = wait_for(
            lambda: (m := api.get(f"/v1/messages/{message_id}").json)["status"] == "delivered" and m
        )
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(10)
    details = [e["detail"] for e in message["events"]]
    assert "re-enqueued: its job was lost" in details and "attempt 2" in details
    assert (
        len(api.get("/v1/sandbox/outbox").json["data"]) == 1
    )  # the killed hand-off never reached the carrier


def _drain(rt: Runtime, timeout=15.0):
    worker = runner.make_worker(rt)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        sweeper.sweep(rt)
        time.sleep(0.1)
        if not any(q.count for q in rt.queues.in_priority_order()) and not sweeper.sweep(rt)["requeued"]:
            return


def test_a_message_accepted_while_redis_is_down_is_delivered_when_it_returns(
    runtime, make_settings, tmp_path
):
    redis_server = EmbeddedRedis(tmp_path / "own-redis").start()
    rt = Runtime(make_settings(redis_url=redis_server.url))
    try:
        with rt.db.session() as session:
            app, key = apps.create_app(session, "shop")
            app.allow_free_text = True
        client = create_app(runtime=rt).test_client()
        auth = {"Authorization": f"Bearer {key}"}
        rt.carriers  # noqa: B018 - build adapters while Redis is up, as a running process would have
        redis_server.stop()

        r = client.post("/v1/messages", json={"to": "+1415", "body": "x"}, headers=auth)
        assert r.json["error"] == "invalid_phone_number"  # validation still answers without Redis
        accepted = client.post(
            "/v1/messages", json={"to": TO, "body": "sent while Redis was down"}, headers=auth
        )
        assert accepted.status_code == 202
        message_id = accepted.json["id"]

        redis_server.start()
        _drain(rt)
        message = client.get(f"/v1/messages/{message_id}", headers=auth).json
        assert message["status"] == "delivered"
        assert [o["body"] for o in client.get("/v1/sandbox/outbox", headers=auth).json["data"]] == [
            "sent while Redis was down"
        ]
    finally:
        rt.close()
        redis_server.stop()


def test_a_message_whose_job_redis_lost_is_re_enqueued(api, admin_api, runtime, work):
    admin_api.patch(f"/v1/apps/{api.app_id}", {"allow_free_text": True})
    message_id = api.post("/v1/messages", {"to": TO, "body": "survives a Redis restart"}).json["id"]
    runtime.redis.flushall()  # what a Redis restart without persistence does to the queues
    time.sleep(runtime.settings.requeue_after + 0.1)
    work()
    message = api.get(f"/v1/messages/{message_id}").json
    assert message["status"] == "delivered"
    assert "re-enqueued: its job was lost" in [e["detail"] for e in message["events"]]
