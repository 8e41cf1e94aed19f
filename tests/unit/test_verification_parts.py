"""The parts of login codes on their own: codes and hashes, texts and locales, sliding-window limits."""

from __future__ import annotations

import pytest

from comms.errors import MaxSendAttempts, RateLimited, ResendTooSoon, ValidationFailed
from comms.services import code_texts, codes
from comms.services.ratelimit import PREFIX, RateLimiter, Rule


def test_codes_are_digits_of_the_asked_length_with_leading_zeros():
    seen = {codes.generate(4) for _ in range(3000)}
    assert all(len(c) == 4 and c.isdigit() for c in seen)
    assert any(c.startswith("0") for c in seen)
    assert len(codes.generate(10)) == 10
    with pytest.raises(ValueError):
        codes.generate(3)


def test_the_hash_is_keyed_and_bound_to_the_verification():
    stored = codes.digest("secret", "ver_1", "123456")
    assert len(stored) == 64 and "123456" not in stored
    assert codes.matches("secret", "ver_1", "123456", stored)
    assert not codes.matches("secret", "ver_1", "123457", stored)
    assert not codes.matches("secret", "ver_2", "123456", stored)
    assert not codes.matches("other-secret", "ver_1", "123456", stored)


@pytest.mark.parametrize(
    ("asked", "region", "locale"),
    [
        (None, "US", "en"),
        (None, "CN", "zh-CN"),
        (None, "TW", "zh-TW"),
        (None, "ZZ", "en"),
        ("zh-CN", "US", "zh-CN"),
        ("zh_cn", "US", "zh-CN"),
        ("zh-Hant-HK", "US", "zh-TW"),
        ("zh", "US", "zh-CN"),
        ("en-GB", "CN", "en"),
        ("pt-BR", "US", "pt"),
    ],
)
def test_locales_resolve(asked, region, locale):
    assert code_texts.resolve(asked, region) == locale


def test_unknown_locales_are_refused():
    with pytest.raises(ValidationFailed):
        code_texts.resolve("tlh", "US")


def test_default_texts_state_the_validity():
    assert code_texts.default_text("zh-CN", 600) == "您的验证码是{{code}}，10分钟内有效。"
    assert code_texts.default_text("en", 90).endswith("It expires in 2 minutes.")
    assert code_texts.default_text("en", 60).endswith("It expires in 1 minute.")
    for locale in code_texts.TEXTS:
        assert code_texts.default_text(locale, 300).count("{{code}}") == 1


@pytest.fixture
def limiter(runtime):
    return RateLimiter(runtime.redis)


def test_a_sliding_window_refuses_with_the_wait_then_allows(limiter):
    rule = Rule("t:window", 2, 10, MaxSendAttempts)
    limiter.hit([rule], now=1000.0)
    limiter.hit([rule], now=1004.0)
    with pytest.raises(MaxSendAttempts) as refused:
        limiter.hit([rule], now=1005.0)
    assert refused.value.retry_after == 5  # the first hit leaves the window at 1010
    limiter.hit([rule], now=1010.5)
    with pytest.raises(MaxSendAttempts):
        limiter.hit([rule], now=1011.0)


def test_rules_are_all_or_nothing_and_report_the_longest_wait(limiter, runtime):
    interval = Rule("t:interval", 1, 30, ResendTooSoon)
    window = Rule("t:window", 2, 600, MaxSendAttempts)
    limiter.hit([interval, window], now=0.0)
    with pytest.raises(ResendTooSoon) as refused:
        limiter.hit([interval, window], now=10.0)
    assert refused.value.retry_after == 20
    assert runtime.redis.zcard(PREFIX + "t:window") == 1  # the refusal consumed nothing
    limiter.hit([interval, window], now=31.0)
    with pytest.raises(MaxSendAttempts) as refused:  # both refuse: the window frees up last
        limiter.hit([interval, window], now=32.0)
    assert refused.value.retry_after == 568


def test_rules_check_their_arguments():
    with pytest.raises(ValueError):
        Rule("k", 0, 10)
    assert issubclass(MaxSendAttempts, RateLimited)
