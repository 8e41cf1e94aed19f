"""Phone numbers: parse anything a user might type into E.164, and tell its country."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from ..errors import CountryNotAllowed, InvalidPhoneNumber


@dataclass(frozen=True)
class Phone:
    e164: str
    region: str  # ISO 3166 alpha-2, "ZZ" when the number belongs to no single country
    country_code: int


def parse(raw: object, field: str = "to") -> Phone:
    """Parse an international number (``+`` and country code required) into E.164.

    Raises:
        InvalidPhoneNumber: the text is not a valid, dialable number.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber(
            "A phone number in international format is required, e.g. +14155552671.", field=field
        )
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber(
            f"{mask(raw)} is not a phone number in international format (+country code).", field=field
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"{mask(raw)} is not a valid phone number.", field=field)
    return Phone(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(number) or "ZZ",
        country_code=number.country_code,
    )


def check_country(phone: Phone, allowed: list[str] | None, field: str = "to") -> None:
    if allowed and phone.region not in allowed:
        raise CountryNotAllowed(f"Sending to {phone.region} is not allowed for this app.", field=field)


def mask(number: str) -> str:
    """Hide the middle of a number for logs and error texts: ``+1415***2671``."""
    text = str(number)
    if len(text) <= 6:
        return "***"
    return f"{text[:5]}***{text[-4:]}" if len(text) > 9 else f"{text[:3]}***{text[-2:]}"
