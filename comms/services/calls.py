"""Voice notifications: validate, render the speech text, enforce per-callee limits, persist, dispatch.

A call is accepted like a text message (stored with its first event before the 202, then handed to
the queue after commit) and delivered by :mod:`comms.services.call_delivery`. Calls to one number are
capped per app (Alibaba Cloud's defaults: 1 a minute, 5 an hour, 20 a day), counted in Redis at
acceptance so every API process shares the count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import FreeTextNotAllowed, MaxCallAttempts, NotFound, TextTooLong, ValidationFailed
from ..models import App, Call, CallEvent, Template, new_id, utcnow
from ..queues import Queues
from . import apps, messages, phone, templates
from .ratelimit import RateLimiter, Rule

DEFAULT_LANGUAGE = "en-US"
# Twilio reads at most 4,096 characters per <Say>; keep clear of it.
MAX_TEXT = 4000
_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,8}))*$")
# Per-callee caps: settings key → (window in seconds, how the refusal names it).
_WINDOWS = {
    "max_calls_per_minute": (60, "minute"),
    "max_calls_per_hour": (3600, "hour"),
    "max_calls_per_day": (86400, "day"),
}

Job = tuple[str, str, list[str]]


def create(runtime, session: Session, app: App, data: Mapping[str, Any]) -> Call:
    """Validate one call, count it against the callee's limits and insert it (not yet committed).

    Raises:
        CommsError: with the contract's error id for whatever is wrong first; MaxCallAttempts (429)
            when the number was called too often, with ``retry_after``.
    """
    to = phone.parse(data.get("to"))
    phone.check_country(to, app.allowed_countries)
    text, template = _speech(session, app, data)
    locale = data.get("language") or (template.locale if template else None)
    language = normalize_language(locale, field="language")
    # Counted last, so a request refused for anything else uses up none of the number's calls.
    RateLimiter(runtime.redis).hit(callee_rules(app, to.e164))
    return insert(
        session,
        app_id=app.id,
        to=to.e164,
        from_=data.get("from_"),
        text=text,
        template_id=template.id if template else None,
        voice=data.get("voice"),
        language=language,
        repeat=int(data.get("repeat") or 1),
        machine_detection=data.get("machine_detection"),
        client_ref=data.get("client_ref"),
        status_callback=data.get("status_callback"),
    )


def insert(
    session: Session,
    *,
    purpose: str = "notification",
    queue: str = "default",
    detail: str | None = None,
    **fields: Any,
) -> Call:
    """Insert a queued call and its first event; ``fields`` are the Call's own (``to``, ``text`` …)."""
    now = utcnow()
    call_id = new_id("call")
    call = Call(
        id=call_id,
        purpose=purpose,
        status="queued",
        queue=queue,
        job_id=f"deliver-{call_id}",
        enqueued_at=now,
        attempts=0,
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(call)
    session.add(CallEvent(call_id=call_id, status="queued", at=now, detail=detail))
    session.flush()
    return call


def job(call: Call) -> Job:
    return (call.queue, call.job_id, [call.id])


def dispatch(queues: Queues, session_factory, jobs: list[Job]) -> None:
    """Enqueue after commit; with Redis down the sweeper enqueues them instead (as for messages)."""
    messages.dispatch(queues, session_factory, jobs, kind="call")


def callee_rules(app: App, to: str) -> list[Rule]:
    """The app's caps on calls to one number; a cap of 0 is off."""
    settings = apps.voice_settings(app)
    rules = []
    for key, (window, unit) in _WINDOWS.items():
        limit = int(settings[key])
        if limit:
            rules.append(
                Rule(
                    f"{app.id}:call:{to}:{unit}",
                    limit,
                    window,
                    MaxCallAttempts,
                    f"At most {limit} call(s) per {unit} go to one number.",
                )
            )
    return rules


def normalize_language(tag: str | None, *, field: str) -> str:
    """A BCP 47 language tag as Twilio writes it (``en-us`` → ``en-US``, ``zh_cn`` → ``zh-CN``).

    Raises:
        ValidationFailed: the tag is not a language tag.
    """
    if not tag:
        return DEFAULT_LANGUAGE
    if not _LANGUAGE.match(tag):
        raise ValidationFailed(f"{tag!r} is not a language tag such as en-US or zh-CN.", field=field)
    first, *rest = tag.replace("_", "-").split("-")
    # Two letters are a region (upper case), four a script (title case), others stay as given.
    subtags = [p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p for p in rest]
    return "-".join([first.lower(), *subtags])


def _speech(session: Session, app: App, data: Mapping[str, Any]) -> tuple[str, Template | None]:
    """The text to read aloud, from an approved voice template or (where allowed) free text."""
    if data.get("template_id") or data.get("template"):
        template = (
            templates.get(session, app.id, data["template_id"])
            if data.get("template_id")
            else templates.get_by_name(session, app.id, data["template"])
        )
        text = templates.for_sending(template, "voice", data.get("params"))
    elif data.get("text"):
        if not app.allow_free_text:
            raise FreeTextNotAllowed(
                "This app may only call with approved templates; give template_id or template.", field="text"
            )
        text, template = data["text"], None
    else:
        raise ValidationFailed(
            "Give template_id or template (or text, where free text is allowed).", field="template_id"
        )
    if not text.strip():
        raise ValidationFailed("The text to read aloud is empty.", field="params")
    if len(text) > MAX_TEXT:
        raise TextTooLong(f"The text to read aloud is longer than {MAX_TEXT} characters.", field="params")
    return text, template


def get(session: Session, app_id: str, call_id: str) -> Call:
    call = session.scalar(select(Call).where(Call.id == call_id, Call.app_id == app_id))
    if call is None:
        raise NotFound("No such call.")
    return call


def events(session: Session, call_id: str) -> list[CallEvent]:
    return list(session.scalars(select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.id)))


def list_calls(
    session: Session, app_id: str, filters: Mapping[str, Any], *, limit: int, cursor: str | None
) -> list[Call]:
    """Newest first, ``limit + 1`` rows (one more says there is a next page); filters as for messages."""
    return messages.list_records(session, Call, app_id, filters, limit=limit, cursor=cursor)
