"""The ``comms`` command: a Flask CLI group, so ``flask --app app …`` reaches the same commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, routes_command, shell_command
from sqlalchemy import select

from . import create_app, migrate
from .models import App, Template
from .runtime import Runtime
from .services import apps

DEMO_APP = "demo"
DEMO_TEMPLATE = ("welcome", "Hi {{name}}, welcome to comms! Reply STOP to opt out.")


def _runtime() -> Runtime:
    return current_app.extensions["comms"]


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_default_commands=False)
def main() -> None:
    """comms: login codes, templated SMS, voice notifications and masked numbers."""


main.add_command(shell_command)
main.add_command(routes_command)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or upgrade the schema to the latest migration."""
    migrate.upgrade(_runtime().db.engine, revision)
    click.echo(f"database at {revision}: {_runtime().db.engine.url.render_as_string(hide_password=True)}")


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (for comms developers)."""
    migrate.revision(_runtime().db.engine, message)


@main.command("create-app")
@click.argument("name")
@click.option("--admin", is_flag=True, help="The key may administer every app.")
@click.option("--json", "as_json", is_flag=True, help='Print {"app_id": …, "api_key": …}.')
def create_app_command(name: str, admin: bool, as_json: bool) -> None:
    """Create an app and print its API key (shown this once; only its hash is kept)."""
    with _runtime().db.session() as session:
        app, key = apps.create_app(session, name, admin=admin)
    if as_json:
        click.echo(json.dumps({"app_id": app.id, "api_key": key}))
    else:
        click.echo(f"app {app.id} ({name}){' [admin]' if admin else ''}\napi key: {key}")


@main.command("rotate-key")
@click.argument("app_id")
def rotate_key_command(app_id: str) -> None:
    """Revoke an app's keys and print a new one."""
    with _runtime().db.session() as session:
        key = apps.rotate_key(session, apps.get_app(session, app_id))
    click.echo(key)


@main.command("worker")
@click.option("--queues", default=None, help="Comma-separated queue names, in priority order.")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker_command(queues: str | None, burst: bool) -> None:
    """Run a delivery worker (RQ) and the outbox sweeper."""
    from workers import runner

    runner.run(_runtime(), queues.split(",") if queues else None, burst=burst)


@main.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8099, show_default=True)
@click.option("--account-sid", default="AC" + "0" * 32, show_default=True)
@click.option("--auth-token", default="emulator-token", show_default=True)
def emulator_command(host: str, port: int, account_sid: str, auth_token: str) -> None:
    """Run the local Twilio-compatible emulator."""
    from .carriers.emulator import serve

    click.echo(f"Twilio emulator on http://{host}:{port} (account {account_sid})")
    serve(host, port, {"account_sid": account_sid, "auth_token": auth_token})


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def run_command(host: str, port: int) -> None:
    """API and a worker together, for a developer (embedded Redis and SQLite unless configured)."""
    rt = _runtime()
    migrate.upgrade(rt.db.engine)
    key = _demo_app(rt)
    env = {
        **os.environ,
        "COMMS_REDIS_URL": rt.redis_url,
        "COMMS_DATABASE_URL": rt.settings.effective_database_url,
        "COMMS_SECRET_KEY": rt.settings.secret_key,
    }
    # Stop cleanly on SIGTERM too (not only Ctrl-C), so the worker and the embedded Redis go with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Two workers: one only for login codes, so a bulk campaign never holds a code behind a chunk.
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "comms.cli", "worker", *queues], env=env, start_new_session=True
        )
        for queues in (["--queues", "verify"], [])
    ]
    base = f"http://{host}:{port}"
    click.echo(
        f"\ncomms is running on {base}  (docs: {base}/docs)\n"
        f"database: {rt.db.engine.url.render_as_string(hide_password=True)}\nredis: {rt.redis_url}\n\n"
        f"API key of app '{DEMO_APP}': {key}\n\nTry:\n"
        f"  curl -s {base}/v1/messages -H 'Authorization: Bearer {key}' \\\n"
        f"    -H 'Content-Type: application/json' \\\n"
        f'    -d \'{{"to": "+14155552671", "template": "welcome", "params": {{"name": "Ada"}}}}\'\n'
        f"  curl -s {base}/v1/sandbox/outbox -H 'Authorization: Bearer {key}'\n"
    )
    try:
        from werkzeug.serving import run_simple

        run_simple(host, port, current_app._get_current_object(), threaded=True)
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)  # the worker and the scheduler process RQ forks
        for worker in workers:
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)


def _demo_app(rt: Runtime) -> str:
    """The developer's demo app with an approved template; a fresh key each run (keys are stored hashed)."""
    with rt.db.session() as session:
        app = session.scalar(select(App).where(App.name == DEMO_APP))
        if app is None:
            app, key = apps.create_app(session, DEMO_APP, admin=True)
        else:
            key = apps.rotate_key(session, app)
        if (
            session.scalar(
                select(Template).where(Template.app_id == app.id, Template.name == DEMO_TEMPLATE[0])
            )
            is None
        ):
            from .services import templates

            templates.create(
                session,
                app.id,
                {
                    "name": DEMO_TEMPLATE[0],
                    "kind": "notification",
                    "channel": "sms",
                    "body": DEMO_TEMPLATE[1],
                },
                auto_approve=True,
            )
    return key


if __name__ == "__main__":
    main()
