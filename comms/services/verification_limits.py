"""The rate limits of login codes: which rules a send must pass, from the app's settings."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ..errors import CountryLimitReached, MaxSendAttempts, RateLimited, ResendTooSoon, ValidationFailed
from .phone import Phone
from .ratelimit import Rule


def ip_bucket(raw: str | None) -> str | None:
    """The client IP as rate limits count it: IPv4 as is, IPv6 per /64 (what one subscriber gets)."""
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        raise ValidationFailed(f"{raw!r} is not an IP address.", field="client_ip") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def rules(app_id: str, to: Phone, client_ip: str | None, settings: Mapping[str, Any]) -> list[Rule]:
    """Per number (window and interval), per client IP and per destination country; 0 turns a cap off."""
    number = f"{app_id}:to:{to.e164}"
    found = [
        Rule(
            f"{number}:window",
            int(settings["max_sends"]),
            int(settings["send_window"]),
            MaxSendAttempts,
            f"At most {settings['max_sends']} codes per {settings['send_window']} s go to one number.",
        )
    ]
    if settings["min_resend_interval"]:
        found.append(
            Rule(
                f"{number}:interval",
                1,
                int(settings["min_resend_interval"]),
                ResendTooSoon,
                f"Codes to one number go at least {settings['min_resend_interval']} s apart.",
            )
        )
    if client_ip and settings["max_sends_per_ip_per_hour"]:
        found.append(
            Rule(
                f"{app_id}:ip:{client_ip}",
                int(settings["max_sends_per_ip_per_hour"]),
                3600,
                RateLimited,
                f"At most {settings['max_sends_per_ip_per_hour']} codes per hour for one client IP.",
            )
        )
    if settings["max_sends_per_country_per_day"]:
        found.append(
            Rule(
                f"{app_id}:country:{to.region}",
                int(settings["max_sends_per_country_per_day"]),
                86400,
                CountryLimitReached,
                f"At most {settings['max_sends_per_country_per_day']} codes a day go to {to.region}.",
            )
        )
    return found
