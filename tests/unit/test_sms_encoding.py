"""Tests for SMS encoding detection, segment counting and template helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comms.sms_encoding import (
    PLACEHOLDER_RE,
    Encoding,
    SmsInfo,
    analyze,
    estimate_template,
    render,
    variables,
)

GSM, UCS = "GSM-7", "UCS-2"
EMOJI = "\U0001f600"


def _reference_parts(body: str) -> list[str]:
    """Split a body character by character: the slow, obviously-correct oracle (alphabet ``a€中😀``)."""
    if not any(c in "中" + EMOJI for c in body):
        cost, single, size = (lambda c: 2 if c in "€[]{}~^|\\\f" else 1), 160, 153
    else:
        cost, single, size = (lambda c: 2 if ord(c) > 0xFFFF else 1), 70, 67
    if sum(map(cost, body)) <= single:
        return [body]
    parts, current, used = [], "", 0
    for c in body:
        if used + cost(c) > size:  # a two-unit character that does not fit starts the next part whole
            parts.append(current)
            current, used = "", 0
        current += c
        used += cost(c)
    parts.append(current)
    return parts


@pytest.mark.parametrize(
    ("body", "encoding", "segments", "units"),
    [
        pytest.param("", GSM, 1, 0, id="empty-bills-as-one"),
        pytest.param("a" * 160, GSM, 1, 160, id="160-plain"),
        pytest.param("a" * 161, GSM, 2, 161, id="161-plain"),
        pytest.param("a" * 306, GSM, 2, 306, id="306-plain"),
        pytest.param("a" * 307, GSM, 3, 307, id="307-plain"),
        pytest.param("€" * 80, GSM, 1, 160, id="80-euro"),
        pytest.param("€" * 81, GSM, 2, 162, id="81-euro"),
        pytest.param("中" * 70, UCS, 1, 70, id="70-chinese"),
        pytest.param("中" * 71, UCS, 2, 71, id="71-chinese"),
        pytest.param("中" * 134, UCS, 2, 134, id="134-chinese"),
        pytest.param("中" * 135, UCS, 3, 135, id="135-chinese"),
        pytest.param("hi " + EMOJI, UCS, 1, 5, id="emoji-forces-ucs2"),
        pytest.param(EMOJI * 35, UCS, 1, 70, id="35-emoji"),
        pytest.param(EMOJI * 36, UCS, 2, 72, id="36-emoji"),
        pytest.param("[]{}~^|\\\f€", GSM, 1, 20, id="every-extension-char"),
        pytest.param("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\r\n", GSM, 1, 44, id="basic-non-ascii"),
        pytest.param("ç", UCS, 1, 1, id="lowercase-c-cedilla-not-gsm"),
        pytest.param("`", UCS, 1, 1, id="backtick-not-gsm"),
        pytest.param("a" * 152 + "€" + "a" * 152, GSM, 3, 306, id="escape-pushed-to-next-part"),
        pytest.param("a" * 151 + "€" + "a" * 153, GSM, 2, 306, id="escape-fits-at-part-end"),
        pytest.param("中" * 66 + EMOJI + "中" * 66, UCS, 3, 134, id="surrogate-pushed-to-next-part"),
        pytest.param("中" * 65 + EMOJI + "中" * 67, UCS, 2, 134, id="surrogate-fits-at-part-end"),
    ],
)
def test_analyze(body: str, encoding: str, segments: int, units: int) -> None:
    assert analyze(body) == SmsInfo(encoding, segments, units)


def test_encoding_values_are_plain_strings() -> None:
    assert Encoding.GSM7 == "GSM-7" and Encoding.UCS2 == "UCS-2"
    assert analyze("hi").encoding == "GSM-7"


def test_sms_info_is_frozen() -> None:
    with pytest.raises(AttributeError):
        analyze("hi").segments = 2  # type: ignore[misc]


@given(st.text(alphabet="a€中" + EMOJI, max_size=400))
def test_segments_match_oracle_and_never_split_pairs(body: str) -> None:
    parts = _reference_parts(body)
    assert analyze(body).segments == len(parts)
    assert "".join(parts) == body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Your code is {{code}}", ["code"]),
        ("{{ name }}, {{code}} {{name}}", ["name", "code"]),
        ("{{_a1}}{{  B_2  }}", ["_a1", "B_2"]),
        ("{{1bad}} {{bad-name}} {single} {{}}", []),
        ("no placeholders", []),
    ],
)
def test_variables(body: str, expected: list[str]) -> None:
    assert variables(body) == expected


def test_placeholder_re_captures_name() -> None:
    match = PLACEHOLDER_RE.fullmatch("{{ code }}")
    assert match is not None and match.group(1) == "code"


@pytest.mark.parametrize(
    ("body", "params", "expected"),
    [
        ("Code {{code}}", {"code": "123456"}, "Code 123456"),
        ("{{ a }}-{{a}}", {"a": "x"}, "x-x"),
        ("{{a}}", {"a": "{{b}}", "b": "no"}, "{{b}}"),
        ("plain", {"unused": "x"}, "plain"),
    ],
)
def test_render(body: str, params: dict[str, str], expected: str) -> None:
    assert render(body, params) == expected


def test_render_missing_param_raises() -> None:
    with pytest.raises(KeyError, match="code"):
        render("{{code}}", {})


@pytest.mark.parametrize(
    ("body", "sample_lengths", "expected"),
    [
        pytest.param("Your code is {{code}}", None, SmsInfo(GSM, 1, 19), id="code-6-digits"),
        pytest.param("Hi {{name}}", None, SmsInfo(GSM, 1, 13), id="other-10-letters"),
        pytest.param("{{name}}", {"name": 161}, SmsInfo(GSM, 2, 161), id="override-length"),
        pytest.param("{{code}}", {"code": 0}, SmsInfo(GSM, 1, 0), id="override-to-empty"),
        pytest.param("你好 {{name}}", None, SmsInfo(UCS, 1, 13), id="literal-ucs2-stays-ucs2"),
        pytest.param("€{{name}}", {"name": 158}, SmsInfo(GSM, 1, 160), id="extension-in-literal"),
    ],
)
def test_estimate_template(body: str, sample_lengths: dict[str, int] | None, expected: SmsInfo) -> None:
    assert estimate_template(body, sample_lengths) == expected


def test_estimate_template_rejects_negative_length() -> None:
    with pytest.raises(ValueError, match="name"):
        estimate_template("{{name}}", {"name": -1})
