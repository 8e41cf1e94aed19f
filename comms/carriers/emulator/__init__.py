"""A local Twilio-compatible server (Messages, Calls, signed status callbacks) for tests and benchmarks."""

from .app import EmulatorApp
from .config import EmulatorConfig
from .server import EmulatorServer, EmulatorThread, create_emulator_app, serve, start_in_thread

__all__ = [
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorThread",
    "create_emulator_app",
    "serve",
    "start_in_thread",
]
