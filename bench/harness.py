"""Shared benchmark set-up: a clean database, an app with an approved template, gunicorn serving comms."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text

from comms import migrate
from comms.models import Base
from comms.runtime import Runtime
from comms.services import apps, templates
from comms.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def environment(**extra: str) -> Iterator[dict[str, str]]:
    """Env for comms processes: the caller's COMMS_* URLs, or a fresh SQLite file and embedded Redis."""
    home = Path(tempfile.mkdtemp(prefix="comms-bench-"))
    env = {
        **os.environ,
        "COMMS_HOME": str(home),
        "COMMS_SECRET_KEY": "bench-secret",
        "COMMS_LOG_LEVEL": "WARNING",
        **extra,
    }
    runtime = Runtime(Settings.from_env(env))
    env["COMMS_REDIS_URL"] = runtime.redis_url  # the embedded server, if one was started, is shared
    env["COMMS_DATABASE_URL"] = runtime.settings.effective_database_url
    with runtime.db.engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(runtime.db.engine)
    runtime.redis.flushdb()
    env["_BENCH_DB"] = runtime.db.engine.dialect.name
    try:
        yield env
    finally:
        runtime.close()
        if runtime.embedded_redis:
            runtime.embedded_redis.stop()


def create_app_with_template(
    env: dict[str, str], body: str = "Hi {{name}}, order {{order}} shipped."
) -> tuple[str, str]:
    runtime = Runtime(Settings.from_env(env))
    with runtime.db.session() as session:
        app, key = apps.create_app(session, "bench")
        template = templates.create(
            session,
            app.id,
            {"name": "shipped", "kind": "notification", "channel": "sms", "body": body},
            auto_approve=True,
        )
    runtime.close()
    return key, template.id


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str], workers: int = 4, threads: int = 1, port: int | None = None
) -> Iterator[int]:
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--backlog",
        "2048",
    ]
    if threads > 1:
        cmd += ["-k", "gthread", "--threads", str(threads)]
    proc = subprocess.Popen([*cmd, "app:app"], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(15)


@contextlib.contextmanager
def workers(
    env: dict[str, str], count: int = 1, queues: str | None = None
) -> Iterator[list[subprocess.Popen]]:
    cmd = [sys.executable, "-m", "comms.cli", "worker"] + (["--queues", queues] if queues else [])
    # Own process groups: stopping one stops the scheduler process RQ forks beside it.
    procs = [subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
