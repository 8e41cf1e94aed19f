"""Shared fixtures: a real database and a real Redis (embedded unless COMMS_* URLs are set), an app
with keys, an API client, and a real RQ worker run in-process."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from comms import create_app, migrate
from comms.models import Base
from comms.redis_conn import EmbeddedRedis, connect
from comms.runtime import Runtime
from comms.services import apps, sweeper
from comms.settings import Settings
from workers import runner


@pytest.fixture(scope="session")
def backing(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The database and Redis URLs for this run, with a freshly migrated schema."""
    home = tmp_path_factory.mktemp("comms-home")
    database_url = os.environ.get("COMMS_DATABASE_URL") or f"sqlite:///{home / 'test.db'}"
    embedded = None
    redis_url = os.environ.get("COMMS_REDIS_URL")
    if not redis_url:
        embedded = EmbeddedRedis(home / "redis").start()
        redis_url = embedded.url
    engine = create_engine(database_url)
    with engine.begin() as conn:  # start from nothing, whatever an earlier run left
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(engine)
    engine.dispose()
    yield {"database_url": database_url, "redis_url": redis_url, "home": str(home)}
    if embedded:
        embedded.stop()


def _clean(runtime: Runtime) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with runtime.db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
    runtime.redis.flushdb()


@pytest.fixture
def make_settings(backing, tmp_path):
    """Settings for a test; keyword arguments override, ``sandbox`` sets the sandbox carrier's options."""

    def make(sandbox: dict | None = None, **overrides) -> Settings:
        carriers = overrides.pop(
            "carriers", {"sandbox": {"type": "sandbox", "delivery_delay": 0, **(sandbox or {})}}
        )
        base = dict(
            home=tmp_path,
            database_url=backing["database_url"],
            redis_url=backing["redis_url"],
            secret_key="test-secret-key",
            carriers=carriers,
            delivery_retries=(0, 0, 0),
            webhook_retries=(0, 1, 1),
            sweep_interval=0.2,
            requeue_after=0.5,
            delivery_concurrency=16,
        )
        return Settings(**{**base, **overrides})

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def runtime(settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    _clean(rt)
    yield rt
    rt.close()


@pytest.fixture
def flask_app(runtime):
    return create_app(runtime=runtime)


@dataclass
class Api:
    """A test client that speaks JSON with one app's key."""

    client: object
    key: str
    app_id: str
    headers: dict = field(default_factory=dict)

    def _call(self, method, path, json_body=None, headers=None, **kwargs):
        all_headers = {"Authorization": f"Bearer {self.key}", **self.headers, **(headers or {})}
        return self.client.open(path, method=method, json=json_body, headers=all_headers, **kwargs)

    def get(self, path, **kw):
        return self._call("GET", path, **kw)

    def post(self, path, json_body=None, **kw):
        return self._call("POST", path, json_body, **kw)

    def patch(self, path, json_body=None, **kw):
        return self._call("PATCH", path, json_body, **kw)

    def delete(self, path, **kw):
        return self._call("DELETE", path, **kw)


@pytest.fixture
def client(flask_app):
    return flask_app.test_client()


@pytest.fixture
def new_app(runtime, client):
    """``new_app(name, admin=False) -> Api`` for a freshly created app."""

    def make(name: str = "shop", admin: bool = False) -> Api:
        with runtime.db.session() as session:
            app, key = apps.create_app(session, name, admin=admin)
        return Api(client=client, key=key, app_id=app.id)

    return make


@pytest.fixture
def api(new_app) -> Api:
    return new_app("shop")


@pytest.fixture
def admin_api(new_app) -> Api:
    return new_app("ops", admin=True)


@pytest.fixture
def approved_template(api, admin_api):
    """``approved_template(body, name=…, kind=…) -> template``: created by ``api``, approved by admin."""

    def make(
        body: str = "Hi {{name}}, your order {{order}} has shipped.",
        name: str = "shipped",
        kind: str = "notification",
        channel: str = "sms",
        owner: Api | None = None,
    ) -> dict:
        owner = owner or api
        created = owner.post("/v1/templates", {"name": name, "kind": kind, "channel": channel, "body": body})
        assert created.status_code == 201, created.json
        approved = admin_api.post(f"/v1/templates/{created.json['id']}/approve")
        assert approved.status_code == 200, approved.json
        return approved.json

    return make


@pytest.fixture
def work(runtime):
    """Run a real RQ worker (in this process, burst mode) and the sweeper until nothing moves."""

    def drain(timeout: float = 20.0) -> None:
        worker = runner.make_worker(runtime)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worked = worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
            counts = sweeper.sweep(runtime)
            queued, scheduled = _pending(runtime)
            if not worked and not any(counts.values()) and not queued:
                if not scheduled:
                    return
                time.sleep(0.1)  # a retry is waiting for its backoff interval
        raise AssertionError("the queues did not drain in time")

    return drain


def _pending(runtime) -> tuple[int, int]:
    queues = runtime.queues.in_priority_order()
    return sum(q.count for q in queues), sum(q.scheduled_job_registry.count for q in queues)


class CallbackReceiver:
    """A local HTTP server recording the JSON callbacks it gets; answers with ``status``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.fail_first = 0  # answer 500 to this many requests first
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @Request.application
    def _app(self, request: Request) -> Response:
        self.requests.append(
            {
                "headers": dict(request.headers),
                "raw": request.get_data(),
                "json": json.loads(request.get_data() or b"null"),
            }
        )
        status = self.status
        if self.fail_first:
            self.fail_first -= 1
            status = 500
        self.requests[-1]["answered"] = status
        return Response("ok" if status < 300 else "no", status=status)

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    r = CallbackReceiver()
    yield r
    r.stop()


@pytest.fixture
def redis_client(runtime):
    return connect(runtime.redis_url)
