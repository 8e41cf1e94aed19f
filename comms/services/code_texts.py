"""The default texts of login codes, per locale, and choosing the locale for a number."""

from __future__ import annotations

import math

from ..errors import ValidationFailed

# locale → (text with {{code}} and {{validity}}, "1 minute", "{n} minutes").
TEXTS: dict[str, tuple[str, str, str]] = {
    "en": ("Your verification code is {{code}}. It expires in {{validity}}.", "1 minute", "{n} minutes"),
    "zh-CN": ("您的验证码是{{code}}，{{validity}}内有效。", "1分钟", "{n}分钟"),
    "zh-TW": ("您的驗證碼是{{code}}，{{validity}}內有效。", "1分鐘", "{n}分鐘"),
    "ja": ("認証コードは{{code}}です。{{validity}}間有効です。", "1分", "{n}分"),
    "es": ("Tu código de verificación es {{code}}. Caduca en {{validity}}.", "1 minuto", "{n} minutos"),
    "pt": ("Seu código de verificação é {{code}}. Ele expira em {{validity}}.", "1 minuto", "{n} minutos"),
    "fr": (
        "Votre code de vérification est {{code}}. Il expire dans {{validity}}.",
        "1 minute",
        "{n} minutes",
    ),
    "de": ("Ihr Bestätigungscode lautet {{code}}. Er läuft in {{validity}} ab.", "1 Minute", "{n} Minuten"),
}
DEFAULT = "en"

# With no locale given, the number's country chooses, as Twilio Verify does.
BY_REGION = {
    "CN": "zh-CN",
    "SG": "zh-CN",
    "TW": "zh-TW",
    "HK": "zh-TW",
    "MO": "zh-TW",
    "JP": "ja",
    "ES": "es",
    "MX": "es",
    "AR": "es",
    "CO": "es",
    "CL": "es",
    "PE": "es",
    "BR": "pt",
    "PT": "pt",
    "FR": "fr",
    "DE": "de",
    "AT": "de",
}
# Script subtags and regions that say which Chinese is meant.
_CHINESE = {"hans": "zh-CN", "cn": "zh-CN", "sg": "zh-CN", "hant": "zh-TW", "tw": "zh-TW", "hk": "zh-TW"}


def resolve(locale: str | None, region: str) -> str:
    """The supported locale for a requested one (``en-GB`` → ``en``, ``zh_Hant`` → ``zh-TW``).

    Raises:
        ValidationFailed: the locale's language is not supported.
    """
    if not locale:
        return BY_REGION.get(region, DEFAULT)
    parts = locale.replace("_", "-").lower().split("-")
    exact = {k.lower(): k for k in TEXTS}
    if "-".join(parts) in exact:
        return exact["-".join(parts)]
    if parts[0] == "zh":
        return next((_CHINESE[p] for p in parts[1:] if p in _CHINESE), "zh-CN")
    if parts[0] in exact:
        return exact[parts[0]]
    raise ValidationFailed(
        f"Locale {locale!r} is not supported; use one of {', '.join(TEXTS)} or an approved template.",
        field="locale",
    )


def default_text(locale: str, ttl: int) -> str:
    """The locale's text with ``{{code}}`` still to fill and the validity (rounded up to minutes) filled."""
    text, one, many = TEXTS[locale]
    minutes = max(1, math.ceil(ttl / 60))
    return text.replace("{{validity}}", one if minutes == 1 else many.format(n=minutes))


# Voice: locale → (text with {digits} twice, the pause between digits, the <Say> language).
VOICE_TEXTS: dict[str, tuple[str, str, str]] = {
    "en": ("Your verification code is: {digits}. Again, your code is: {digits}.", ", ", "en-US"),
    "zh-CN": ("您的验证码是：{digits}。重复一遍：{digits}。", "，", "zh-CN"),
    "zh-TW": ("您的驗證碼是：{digits}。重複一遍：{digits}。", "，", "zh-TW"),
    "ja": ("認証コードは、{digits}、です。もう一度、{digits}。", "、", "ja-JP"),
    "es": ("Tu código de verificación es: {digits}. Repito: {digits}.", ", ", "es-ES"),
    "pt": ("Seu código de verificação é: {digits}. Repetindo: {digits}.", ", ", "pt-BR"),
    "fr": ("Votre code de vérification est : {digits}. Je répète : {digits}.", ", ", "fr-FR"),
    "de": ("Ihr Bestätigungscode lautet: {digits}. Noch einmal: {digits}.", ", ", "de-DE"),
}


def spoken_digits(code: str, locale: str = DEFAULT) -> str:
    """The code digit by digit with a pause after each (``1, 2, 3``: a comma is a pause in <Say>)."""
    return VOICE_TEXTS[locale][1].join(code)


def voice_text(locale: str, code: str) -> str:
    """What a call reads: the code digit by digit, the whole code twice."""
    text, _, _ = VOICE_TEXTS[locale]
    return text.format(digits=spoken_digits(code, locale))


def voice_language(locale: str) -> str:
    return VOICE_TEXTS[locale][2]
