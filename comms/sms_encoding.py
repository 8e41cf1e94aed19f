"""How carriers bill a text: GSM-7 or UCS-2 encoding, segment count, and ``{{name}}`` templates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Encoding(StrEnum):
    """The two alphabets an SMS body can be sent in."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """What a body costs to send.

    Attributes:
        encoding: ``"GSM-7"`` or ``"UCS-2"`` (an :class:`Encoding`, which is a ``str``).
        segments: billed message parts; an empty body is 1, because carriers bill it as one.
        units: GSM-7 septets or UTF-16 code units of the whole body, before any splitting.
    """

    encoding: Encoding
    segments: int
    units: int


# 3GPP TS 23.038 basic character set, in table order; 0x1B (escape) is left out because it is
# the extension-table prefix, not a character a body can contain.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each is sent as escape + character, so it costs two septets.
_GSM_EXT = frozenset("\f^{}\\[~]|€")
_GSM_ALL = _GSM_BASIC | _GSM_EXT
_GSM_EXT_RE = re.compile("[" + re.escape("".join(sorted(_GSM_EXT))) + "]")
# Characters outside the BMP become a UTF-16 surrogate pair (two code units).
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")

_GSM_SINGLE, _GSM_PART = 160, 153  # a concatenated part loses 7 septets to the UDH
_UCS_SINGLE, _UCS_PART = 70, 67  # ... and 3 UTF-16 units

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _count_parts(units: int, single: int, part: int, pair_offsets: list[int]) -> int:
    """Count concatenated parts when two-unit sequences must not straddle a part boundary.

    Args:
        units: total units in the body.
        single: most units a one-part message can hold.
        part: most units each part of a concatenated message can hold.
        pair_offsets: unit offsets where a two-unit sequence starts, ascending.

    Returns:
        Number of parts (at least 1).
    """
    if units <= single:
        return 1
    if not pair_offsets:
        return -(-units // part)
    # Walk part by part (not character by character): a part whose last unit would be the first
    # half of a pair ends one unit early so the pair travels whole in the next part.
    starts = set(pair_offsets)
    parts, start = 0, 0
    while start < units:
        end = start + part
        if end < units and end - 1 in starts:
            end -= 1
        parts += 1
        start = end
    return parts


def _pair_offsets(body: str, pattern: re.Pattern[str]) -> list[int]:
    """Unit offsets of each two-unit character matched by ``pattern`` (each earlier one shifts by 1)."""
    return [m.start() + i for i, m in enumerate(pattern.finditer(body))]


def analyze(body: str) -> SmsInfo:
    """Work out the encoding, billed segments and unit count of an SMS body.

    Args:
        body: the message text.

    Returns:
        The body's :class:`SmsInfo`. An empty body is GSM-7, 0 units, 1 segment.
    """
    # issuperset/isdisjoint take the str directly: a C-level scan with early exit, no per-char Python.
    if _GSM_ALL.issuperset(body):
        if _GSM_EXT.isdisjoint(body):
            units = len(body)
            return SmsInfo(Encoding.GSM7, _count_parts(units, _GSM_SINGLE, _GSM_PART, []), units)
        offsets = _pair_offsets(body, _GSM_EXT_RE)
        units = len(body) + len(offsets)
        return SmsInfo(Encoding.GSM7, _count_parts(units, _GSM_SINGLE, _GSM_PART, offsets), units)
    # Carriers actually send UTF-16 under the "UCS-2" label, so astral characters cost two units;
    # surrogatepass keeps a stray lone surrogate from raising (it costs one unit, as sent).
    units = len(body.encode("utf-16-le", "surrogatepass")) // 2
    offsets = _pair_offsets(body, _ASTRAL_RE) if units > _UCS_SINGLE and units != len(body) else []
    return SmsInfo(Encoding.UCS2, _count_parts(units, _UCS_SINGLE, _UCS_PART, offsets), units)


def variables(body: str) -> list[str]:
    """List a template's placeholder names.

    Args:
        body: template text with ``{{name}}`` placeholders.

    Returns:
        Unique names in order of first appearance.
    """
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER_RE.finditer(body)))


def render(body: str, params: Mapping[str, str]) -> str:
    """Fill a template's placeholders.

    Values are inserted verbatim (a value containing ``{{x}}`` is not expanded again); extra
    params are ignored.

    Args:
        body: template text with ``{{name}}`` placeholders.
        params: value for each placeholder name.

    Returns:
        The rendered text.

    Raises:
        KeyError: a placeholder has no value in ``params`` (sending ``{{code}}`` literally is worse).
    """
    return PLACEHOLDER_RE.sub(lambda m: str(params[m.group(1)]), body)


def estimate_template(body: str, sample_lengths: Mapping[str, int] | None = None) -> SmsInfo:
    """Estimate what a template will cost once rendered with typical values.

    Each placeholder becomes a run of GSM-7 basic characters (6 digits for ``code``, else 10
    ASCII letters), so the template's literal text alone decides whether the result is UCS-2.

    Args:
        body: template text with ``{{name}}`` placeholders.
        sample_lengths: per-variable length overriding the default.

    Returns:
        The :class:`SmsInfo` of the template rendered with the sample values.

    Raises:
        ValueError: a sample length is negative.
    """
    lengths = sample_lengths or {}
    samples: dict[str, str] = {}
    for name in variables(body):
        length = lengths.get(name, 6 if name == "code" else 10)
        if length < 0:
            raise ValueError(f"sample length for {name!r} must not be negative, got {length}")
        samples[name] = ("0" if name == "code" else "a") * length
    return analyze(render(body, samples))
