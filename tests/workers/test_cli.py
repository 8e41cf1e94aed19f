"""The command line as a newcomer meets it: ``comms run`` prints a key and a curl line that work."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, key, body=None):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_comms_run_serves_the_printed_curl_line_on_the_embedded_defaults(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMS_")}
    env["COMMS_HOME"] = str(tmp_path / "home")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "comms.cli", "run", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("/v1/sandbox/outbox" in line for line in lines):
            lines.append(proc.stdout.readline())
        output = "".join(lines)
        key = re.search(r"API key of app 'demo': (\S+)", output).group(1)
        body = json.loads(re.search(r"-d '(\{.*\})'", output).group(1))
        assert "sqlite" in output and "unix://" in output  # the embedded defaults
        base = f"http://127.0.0.1:{port}"
        wait_until_listening(base)
        sent = call(f"{base}/v1/messages", key, body)
        assert sent["status"] == "queued"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if call(f"{base}/v1/messages/{sent['id']}", key)["status"] == "delivered":
                break
            time.sleep(0.2)
        assert call(f"{base}/v1/messages/{sent['id']}", key)["status"] == "delivered"
        assert call(f"{base}/v1/sandbox/outbox", key)["data"][0]["body"].startswith("Hi Ada")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert not _alive(tmp_path), "comms run left processes behind (embedded Redis or worker)"


def wait_until_listening(base: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _alive(tmp_path) -> bool:
    found = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    return bool(found.stdout.strip())


def test_create_app_json(tmp_path, backing):
    env = {
        **os.environ,
        "COMMS_HOME": str(tmp_path),
        "COMMS_DATABASE_URL": backing["database_url"],
        "COMMS_REDIS_URL": backing["redis_url"],
    }
    out = subprocess.run(
        [sys.executable, "-m", "comms.cli", "create-app", "acme", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    created = json.loads(out.strip().splitlines()[-1])
    assert created["app_id"].startswith("app_") and created["api_key"].startswith("ck_")
