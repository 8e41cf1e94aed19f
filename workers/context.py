"""The worker process's Runtime: built once, from the environment unless a test installs its own."""

from __future__ import annotations

from comms.runtime import Runtime
from comms.settings import Settings

_runtime: Runtime | None = None


def install(runtime: Runtime) -> Runtime:
    global _runtime
    _runtime = runtime
    return runtime


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Settings.from_env())
    return _runtime
