"""Wires one process's dependencies (database, Redis, queues, carriers) from Settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

import redis

from .db import Database
from .redis_conn import EmbeddedRedis, connect
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a request handler or a job needs, built once per process.

    Nothing connects at import time: the API and each worker build their own Runtime.
    """

    settings: Settings
    embedded_redis: EmbeddedRedis | None = field(default=None, repr=False)

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.effective_database_url)

    @cached_property
    def redis_url(self) -> str:
        if self.settings.redis_url:
            return self.settings.redis_url
        if self.embedded_redis is None:
            self.embedded_redis = EmbeddedRedis(self.settings.home / "redis").start()
        return self.embedded_redis.url

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.redis_url)

    @cached_property
    def queues(self):
        from .queues import Queues

        return Queues(self.redis, self.settings)

    @cached_property
    def carriers(self):
        from .carriers.registry import build_carriers

        return build_carriers(self.settings, self.redis)

    @cached_property
    def router(self):
        from .routing import Router

        return Router(self.settings.routes, self.carriers)

    @cached_property
    def health(self):
        from .carrier_health import CarrierHealth

        return CarrierHealth(
            self.redis, self.settings.carrier_failure_threshold, self.settings.carrier_cooldown
        )

    @cached_property
    def pacer(self):
        from .pacing import Pacer

        return Pacer(self.redis)

    @cached_property
    def executor(self):
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(self.settings.delivery_concurrency, thread_name_prefix="handoff")

    def close(self) -> None:
        if "executor" in self.__dict__:
            self.executor.shutdown(wait=False)
        if "db" in self.__dict__:
            self.db.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
