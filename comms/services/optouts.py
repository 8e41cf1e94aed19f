"""Opt-outs: STOP and its synonyms block an app's texts to a number until START."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import RecipientOptedOut
from ..models import Message, OptOut

# The keywords carriers honour (Twilio's defaults; CTIA's list for US short codes).
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN"})


def keyword(body: str | None) -> str | None:
    """The opt-out or opt-in keyword a text consists of, if any (case and spacing ignored)."""
    word = (body or "").strip().upper().rstrip(".!")
    return word if word in STOP_WORDS | START_WORDS else None


def blocked(session: Session, app_id: str, numbers: Iterable[str]) -> set[str]:
    numbers = list(set(numbers))
    if not numbers:
        return set()
    return set(
        session.scalars(select(OptOut.number).where(OptOut.app_id == app_id, OptOut.number.in_(numbers)))
    )


def check(session: Session, app_id: str, number: str) -> None:
    if session.get(OptOut, (app_id, number)) is not None:
        raise RecipientOptedOut(field="to")


def apps_texting(session: Session, number: str, sender: str | None, default_sender: str | None) -> list[str]:
    """The app whose latest text to ``number`` came from ``sender`` (the number the reply went to);
    any app that texted the number when none matches."""
    recent = session.execute(
        select(Message.app_id, Message.from_)
        .where(Message.to == number)
        .order_by(Message.id.desc())
        .limit(200)
    ).all()
    for app_id, from_ in recent:
        if (from_ or default_sender) == sender:
            return [app_id]
    return sorted({app_id for app_id, _ in recent})


def record(session: Session, app_ids: Iterable[str], number: str, word: str) -> None:
    for app_id in app_ids:
        if word in STOP_WORDS:
            try:
                with session.begin_nested():
                    session.add(OptOut(app_id=app_id, number=number, keyword=word))
            except IntegrityError:
                pass  # already opted out: a repeated STOP changes nothing
        else:
            session.execute(delete(OptOut).where(OptOut.app_id == app_id, OptOut.number == number))
