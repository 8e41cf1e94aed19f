"""Carrier adapter classes by type name, and building the configured carriers of a deployment."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..settings import Settings
from .base import Carrier, CarrierContext

log = logging.getLogger(__name__)

_adapters: dict[str, type[Carrier]] = {}


def register(adapter: type[Carrier]) -> type[Carrier]:
    """Make an adapter class selectable by its ``type_name`` in the carriers configuration."""
    _adapters[adapter.type_name] = adapter
    return adapter


def adapter_types() -> dict[str, type[Carrier]]:
    _register_builtins()
    return {name: cls for name, cls in _adapters.items() if cls.enabled()}


def build_carriers(settings: Settings, redis) -> dict[str, Carrier]:
    """One adapter instance per configured carrier name (``[carriers.NAME] type = "…"``)."""
    types = adapter_types()
    context = CarrierContext(redis=redis, public_url=settings.public_url)
    carriers: dict[str, Carrier] = {}
    for name, config in settings.carriers.items():
        kind = config.get("type", name)
        if kind not in types:
            raise ValueError(f"carrier {name!r}: unknown or unavailable type {kind!r}")
        carriers[name] = types[kind](name, _without_type(config), context)
        log.info("carrier %s (%s): %s", name, kind, carriers[name].masked_config())
    return carriers


def _without_type(config: Mapping) -> dict:
    return {k: v for k, v in config.items() if k != "type"}


def _register_builtins() -> None:
    if _adapters:
        return
    from .sandbox import SandboxCarrier

    register(SandboxCarrier)
    try:
        from .twilio import TwilioCarrier
    except ImportError:  # the twilio SDK is optional for a sandbox-only install
        return
    register(TwilioCarrier)
