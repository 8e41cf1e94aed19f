"""Verifications (login codes): start or resend, check, cancel, read.

A start runs the cheap refusals first (number, channel, countries, template, an active fraud-guard
pause, the guard's judgement of the country), then consumes every rate limit at once in Redis and
counts the send for the fraud guard; only then does it mint (or, while one is pending, reuse) the
code and write the verification, its send attempt and an SMS (or, with ``channel: voice``, a call that
reads the code digit by digit, twice) on the ``verify`` queue in the caller's transaction. The message
or call row holds the text with the code masked; the real text waits in Redis for the worker (see
secret_bodies). A voice code also counts against the app's per-callee call limits.

A check locks the verification row, compares the keyed hash in constant time, and writes the counted
check and the new status with one conditional UPDATE, so a code approves once, also when eight checks
race, and the checks that exceed ``max_checks`` are refused without being counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import redis
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .. import sms_encoding
from ..errors import (
    InvalidState,
    MaxCheckAttempts,
    ServiceUnavailable,
    TemplateKindMismatch,
    VerificationNotFound,
)
from ..models import (
    App,
    Call,
    Message,
    MessageEvent,
    Template,
    Verification,
    VerificationSend,
    new_id,
    utcnow,
)
from . import (
    apps,
    calls,
    code_texts,
    codes,
    fraud_guard,
    optouts,
    phone,
    secret_bodies,
    templates,
    verification_limits,
)
from .ratelimit import RateLimiter

Job = tuple[str, str, list[str]]
QUEUE = "verify"
# Core tables: these rows need no ORM objects, and plain INSERTs skip the ORM's bulk-insert machinery.
_MESSAGES, _EVENTS, _SENDS = Message.__table__, MessageEvent.__table__, VerificationSend.__table__


@dataclass(frozen=True)
class Started:
    verification: Verification
    send_attempts: list[dict[str, Any]]
    jobs: list[Job]
    # What the jobs deliver: ``message`` (sms) or ``call`` (voice); see messages.dispatch.
    kind: str = "message"


def start(runtime, session: Session, app: App, data: Mapping[str, Any]) -> Started:
    """Start a verification, or resend the pending one's code; returns it with the job to enqueue.

    Nothing is committed except a fraud-guard pause this request trips; the caller commits, then
    enqueues the job (``comms.services.messages.dispatch``).
    """
    settings = apps.verification_settings(app)
    channel = data.get("channel", "sms")
    to = phone.parse(data.get("to"))
    phone.check_country(to, app.allowed_countries)
    phone.check_country(to, settings["allowed_countries"])
    if channel == "sms":  # STOP opts out of texts only; the carrier would refuse the text (Twilio 21610)
        optouts.check(session, app.id, to.e164)
    template = _template(session, app.id, data.get("template_id"), channel)
    locale = (
        code_texts.resolve(data.get("locale"), to.region)
        if template is None
        else (data.get("locale") or template.locale or code_texts.DEFAULT)
    )
    # Checked before any limit is counted, so a bad template locale uses up nothing.
    send = partial(_queue_call, language=_voice_language(locale)) if channel == "voice" else _queue_message
    client_ip = verification_limits.ip_bucket(data.get("client_ip"))
    now = utcnow()
    fraud_guard.refuse_if_paused(session, app.id, to.region, now)
    pending = _pending(session, app.id, to.e164, now)
    fraud_guard.judge(session, runtime.redis, app.id, to.region, settings, now)
    rules = verification_limits.rules(app.id, to, client_ip, settings)
    if channel == "voice":
        rules += calls.callee_rules(app, to.e164)
    RateLimiter(runtime.redis).hit(rules)
    fraud_guard.record_send(runtime.redis, app.id, to.region, now)

    secret = runtime.settings.secret_key
    created = None
    if pending is None:
        length = int(data.get("code_length") or settings["code_length"])
        verification = Verification(
            id=new_id("ver"),
            app_id=app.id,
            to=to.e164,
            country=to.region,
            channel=channel,
            locale=locale,
            template_id=template.id if template else None,
            status="pending",
            code_length=length,
            checks=0,
            max_checks=int(settings["max_checks"]),
            sends=1,
            client_ip=(data.get("client_ip") or "").strip() or None,
            expires_at=now + timedelta(seconds=int(settings["code_ttl"])),
            last_sent_at=now,
            created_at=now,
            updated_at=now,
        )
        code = codes.generate(length)
        verification.code_hash = codes.digest(secret, verification.id, code)
        session.add(verification)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            # A concurrent request for the same number created one first: resend that one instead.
            pending = _pending(session, app.id, to.e164, now)
            if pending is None:
                raise
        else:
            created = code
    if pending is not None:
        verification = pending
        ttl = codes.ttl_until(verification.expires_at, now)
        code, minted = codes.load_or_mint(runtime.redis, verification.id, verification.code_length, ttl)
        # As on Twilio Verify, the verification's channel is the one its code last went by.
        changes: dict[str, Any] = {"last_sent_at": now, "updated_at": now, "channel": channel}
        if minted:  # Redis lost the code: the new one replaces it (the old one can no longer be sent)
            changes["code_hash"] = codes.digest(secret, verification.id, code)
        sends = session.execute(
            update(Verification)
            .where(Verification.id == verification.id)
            .values(sends=Verification.sends + 1, **changes)
            .returning(Verification.sends)
        ).scalar_one()
        for key, value in {**changes, "sends": sends}.items():
            set_committed_value(verification, key, value)
    record_id, text = send(session, app, verification, template, locale, code, now)
    _keep_secrets(runtime, verification, record_id, text, created, now)
    session.execute(
        _SENDS.insert(),
        {"verification_id": verification.id, "message_id": record_id, "channel": channel, "at": now},
    )
    attempt = _attempt(record_id, channel, now, "queued")
    return Started(
        verification=verification,
        send_attempts=[attempt] if created else send_attempts(session, verification.id),
        jobs=[(QUEUE, f"deliver-{record_id}", [record_id])],
        kind="call" if channel == "voice" else "message",
    )


def check(runtime, session: Session, app: App, data: Mapping[str, Any]) -> tuple[Verification, bool]:
    """Check a code; returns the verification and whether this check approved it.

    Raises:
        VerificationNotFound: no verification with that id (or for that number) for the app.
        MaxCheckAttempts: its checks are used up; this one was not counted.
    """
    now = utcnow()
    if data.get("verification_id"):
        where = Verification.id == data["verification_id"]
    else:
        where = Verification.to == phone.parse(data.get("to")).e164
    # The row lock (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises anyway) orders concurrent checks.
    verification = session.scalar(
        select(Verification)
        .where(Verification.app_id == app.id, where)
        .order_by(Verification.id.desc())
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if verification is None:
        raise VerificationNotFound("No verification for this number or id.")
    if _expire_if_due(session, verification, now):
        return verification, False
    if verification.status == "max_attempts_reached" or (
        verification.status == "pending" and verification.checks >= verification.max_checks
    ):
        raise MaxCheckAttempts(
            f"All {verification.max_checks} checks of this verification are used; start a new one.",
            retry_after=_next_send_in(app, verification, now),
        )
    if verification.status != "pending":
        return verification, False  # approved or canceled: never approves again
    valid = codes.matches(runtime.settings.secret_key, verification.id, data["code"], verification.code_hash)
    checks = verification.checks + 1
    if valid:
        status = "approved"
    else:
        status = "max_attempts_reached" if checks >= verification.max_checks else "pending"
    result = session.execute(
        update(Verification)
        .where(
            Verification.id == verification.id,
            Verification.status == "pending",
            Verification.checks == verification.checks,
        )
        .values(checks=checks, status=status, approved_at=now if valid else None, updated_at=now)
        .returning(Verification.id)
    ).first()
    if result is None:  # another check got there first (only possible without the row lock)
        session.refresh(verification)
        return verification, False
    values = {"checks": checks, "status": status, "approved_at": now if valid else None, "updated_at": now}
    for key, value in values.items():
        set_committed_value(verification, key, value)
    if status != "pending":
        codes.forget(runtime.redis, verification.id)
    if valid:
        fraud_guard.record_approval(runtime.redis, app.id, verification.country, now)
    return verification, valid


def cancel(runtime, session: Session, app_id: str, verification_id: str) -> Verification:
    """Cancel a pending verification: its code stops working at once.

    Raises:
        InvalidState: it is no longer pending.
    """
    verification = get(session, app_id, verification_id)
    now = utcnow()
    result = session.execute(
        update(Verification)
        .where(Verification.id == verification.id, Verification.status == "pending")
        .values(status="canceled", updated_at=now)
    )
    session.refresh(verification)
    if result.rowcount == 0:
        raise InvalidState(f"The verification is {verification.status} and can no longer be canceled.")
    codes.forget(runtime.redis, verification.id)
    return verification


def get(session: Session, app_id: str, verification_id: str) -> Verification:
    """The app's verification, marked expired first when its time is up (the caller commits)."""
    verification = session.scalar(
        select(Verification).where(Verification.id == verification_id, Verification.app_id == app_id)
    )
    if verification is None:
        raise VerificationNotFound()
    _expire_if_due(session, verification, utcnow())
    return verification


def send_attempts(session: Session, verification_id: str) -> list[dict[str, Any]]:
    """Each send of the code: its message (or call), channel, time and delivery status."""
    rows = session.execute(
        select(
            VerificationSend.message_id,
            VerificationSend.channel,
            VerificationSend.at,
            func.coalesce(Message.status, Call.status),
        )
        .outerjoin(Message, Message.id == VerificationSend.message_id)
        .outerjoin(Call, Call.id == VerificationSend.message_id)
        .where(VerificationSend.verification_id == verification_id)
        .order_by(VerificationSend.id)
    )
    return [_attempt(record_id, c, at, s) for record_id, c, at, s in rows]


def _attempt(record_id: str, channel: str, at: datetime, status: str | None) -> dict[str, Any]:
    """A send attempt as shown: ``message_id`` for a text, ``call_id`` for a call."""
    voice = channel == "voice"
    return {
        "message_id": None if voice else record_id,
        "call_id": record_id if voice else None,
        "channel": channel,
        "at": at,
        "status": status,
    }


def _template(session: Session, app_id: str, template_id: str | None, channel: str) -> Template | None:
    if not template_id:
        return None
    template = templates.get(session, app_id, template_id)
    if template.kind != "verification":
        raise TemplateKindMismatch(
            f"Template {template.name!r} is a {template.kind} template, not a verification template.",
            field="template_id",
        )
    templates.for_sending(template, channel, {"code": "0000"})  # approved, the channel's, exactly {{code}}
    return template


def _pending(session: Session, app_id: str, to: str, now: datetime) -> Verification | None:
    verification = session.scalar(
        select(Verification)
        .where(Verification.app_id == app_id, Verification.to == to, Verification.status == "pending")
        # Locked until commit, so a check cannot approve it while its code is being resent.
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if verification is None or _expire_if_due(session, verification, now):
        return None
    return verification


def _expire_if_due(session: Session, verification: Verification, now: datetime) -> bool:
    """Mark a pending verification past its time expired; True when it is (now) expired."""
    if verification.status == "pending" and verification.expires_at <= now:
        session.execute(
            update(Verification)
            .where(Verification.id == verification.id, Verification.status == "pending")
            .values(status="expired", updated_at=now)
        )
        session.refresh(verification)
    return verification.status == "expired"


def _next_send_in(app: App, verification: Verification, now: datetime) -> int:
    """Seconds until a new code may go to the number (the useful wait after a used-up verification)."""
    interval = int(apps.verification_settings(app)["min_resend_interval"])
    last = verification.last_sent_at or verification.created_at
    return max(1, math.ceil(interval - (now - last).total_seconds()))


def _keep_secrets(
    runtime, verification: Verification, record_id: str, text: str, new_code: str | None, now: datetime
) -> None:
    """The real text of the send (and a new code) go to Redis, in one round trip, until the code expires."""
    ttl = codes.ttl_until(verification.expires_at, now)
    try:
        with runtime.redis.pipeline(transaction=False) as pipe:
            if new_code is not None:
                pipe.set(codes.redis_key(verification.id), new_code, ex=ttl)
            pipe.set(secret_bodies.key(record_id), text.encode(), ex=ttl)
            pipe.execute()
    except redis.RedisError as exc:
        raise ServiceUnavailable("The code cannot be queued right now; retry shortly.") from exc


def _queue_message(
    session: Session,
    app: App,
    verification: Verification,
    template: Template | None,
    locale: str,
    code: str,
    now: datetime,
) -> tuple[str, str]:
    """Insert the SMS carrying the code (masked in the row) and its first event; returns its id and the
    real text."""
    if template is not None:
        body = template.body
    else:
        ttl = int((verification.expires_at - verification.created_at).total_seconds())
        body = code_texts.default_text(locale, ttl)
    text = sms_encoding.render(body, {"code": code})
    info = sms_encoding.analyze(text)
    message_id = new_id("msg")
    session.execute(
        _MESSAGES.insert(),
        {
            "id": message_id,
            "app_id": app.id,
            "to": verification.to,
            "from": None,
            "body": sms_encoding.render(body, {"code": "*" * len(code)}),
            "template_id": template.id if template else None,
            "purpose": "verification",
            "status": "queued",
            "segments": info.segments,
            "encoding": str(info.encoding),
            "client_ref": verification.id,
            "status_callback": None,
            "send_at": None,
            "due_at": now,
            "queue": QUEUE,
            "job_id": f"deliver-{message_id}",
            "enqueued_at": now,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    session.execute(
        _EVENTS.insert(), {"message_id": message_id, "status": "queued", "at": now, "detail": "login code"}
    )
    return message_id, text


def _queue_call(
    session: Session,
    app: App,
    verification: Verification,
    template: Template | None,
    locale: str,
    code: str,
    now: datetime,
    *,
    language: str,
) -> tuple[str, str]:
    """Insert the call that reads the code digit by digit, twice (masked in the row); returns its id and
    the real text. The default text says the code twice; a voice template's text is read twice."""
    separator_locale = locale if locale in code_texts.VOICE_TEXTS else code_texts.DEFAULT

    def speech(digits: str) -> str:
        if template is None:
            return code_texts.voice_text(locale, digits)
        return sms_encoding.render(
            template.body, {"code": code_texts.spoken_digits(digits, separator_locale)}
        )

    call = calls.insert(
        session,
        purpose="verification",
        queue=QUEUE,
        detail="login code",
        app_id=app.id,
        to=verification.to,
        text=speech("*" * len(code)),
        template_id=template.id if template else None,
        language=language,
        repeat=1 if template is None else 2,
        client_ref=verification.id,
    )
    return call.id, speech(code)


def _voice_language(locale: str) -> str:
    """The <Say> language for a code's locale (``en`` → ``en-US``); a template's own locale as written."""
    if locale in code_texts.VOICE_TEXTS:
        return code_texts.voice_language(locale)
    return calls.normalize_language(locale, field="locale")
