"""Claims of proxy numbers by parties: choosing a number free for both parties of a binding, and
claiming it so that the database itself arbitrates between simultaneous binds.

``binding_parties`` has one row per party of each active binding, keyed by (proxy_number, party): a
second claim of a number by the same party is refused by the INSERT, whatever the number of concurrent
writers. A bind that loses such a race takes back what it wrote and chooses again; each retry sees the
winner's claim, so it ends in a free number or in ``pool_exhausted`` when there truly is none. Claims are
deleted when their binding ends (comms.services.bindings.end).

Statements are built once at import (Core, bound parameters): a bind is a handful of round trips.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, text, update
from sqlalchemy.orm import Session

from ..errors import PoolExhausted, ServiceUnavailable
from ..models import Binding, BindingParty, ProxyNumber, new_id
from . import phone

log = logging.getLogger(__name__)

# Ties for least used are broken at random among this many numbers, so simultaneous binds spread over
# several numbers' rows instead of all queueing on one.
CANDIDATES = 16
MAX_ROUNDS = 64


class Overdue(Exception):  # noqa: N818 - control flow: end these bindings, then try again
    """Overdue bindings of the parties still hold numbers: end them, then bind again."""

    def __init__(self, ids: Sequence[str]):
        super().__init__(f"{len(ids)} overdue binding(s)")
        self.ids = list(ids)


def place(
    session: Session,
    app_id: str,
    a: str,
    b: str,
    expires_at: datetime,
    data: Mapping[str, Any],
    clock: Callable[[], datetime],
) -> Binding:
    """Insert a binding of ``a`` and ``b`` on the least-used number of the pool free for both (not
    committed).

    Raises:
        Overdue: no number is free, but the parties' overdue bindings hold some.
        PoolExhausted: no number of the pool is free for both parties.
    """
    conn = session.connection()  # Core statements, prepared once: a bind is a handful of round trips
    parties = sorted((a, b))
    pool = data.get("pool") or "default"
    query = _CANDIDATES[frozenset(data.get("capabilities") or ("voice", "sms"))]
    for _ in range(MAX_ROUNDS):
        candidates = conn.execute(query, {"pool": pool, "parties": parties}).all()
        if not candidates:
            # The parties' overdue bindings still hold numbers until ended; only then is the pool empty.
            found = overdue(session, parties, clock())
            if found:
                raise Overdue(found)
            raise PoolExhausted(
                f"No number in pool {pool!r} is free for both parties; add numbers or release bindings."
            )
        least = candidates[0].active_bindings
        number = random.choice([c.number for c in candidates if c.active_bindings == least])
        now = clock()
        row = {
            "id": new_id("bnd"),
            "app_id": app_id,
            "proxy_number": number,
            "party_a": a,
            "party_b": b,
            "pool": pool,
            "record": bool(data.get("record")),
            "client_ref": data.get("client_ref"),
            "status": "active",
            "expires_at": expires_at,
            "ended_at": None,
            "created_at": now,
            "updated_at": now,
        }
        conn.execute(_INSERT_BINDING, row)
        if claim(conn, row) == 2 and count(conn, {number: 1}):
            return Binding(**row)
        # Another bind claimed this number for one of our parties first (or the number was deleted):
        # take back what we wrote and choose again; the next query sees the winner's claim.
        log.debug("claim conflict on %s; choosing again", phone.mask(number))
        conn.execute(delete(_claims).where(_claims.c.binding_id == row["id"]))
        conn.execute(delete(_bindings).where(_bindings.c.id == row["id"]))
    raise ServiceUnavailable("The number pool is too busy right now; retry shortly.")


def _candidates(needs: frozenset[str]):
    """The least-used numbers of pool ``:pool`` with ``needs`` on which no ``:parties`` holds a claim."""
    taken = select(_claims.c.proxy_number).where(_claims.c.party.in_(bindparam("parties", expanding=True)))
    query = select(_numbers.c.number, _numbers.c.active_bindings).where(
        _numbers.c.pool == bindparam("pool"), _numbers.c.number.not_in(taken)
    )
    for capability in sorted(needs):
        query = query.where(_numbers.c[capability].is_(True))
    return query.order_by(_numbers.c.active_bindings, _numbers.c.number).limit(CANDIDATES)


_numbers, _bindings, _claims = ProxyNumber.__table__, Binding.__table__, BindingParty.__table__
_CANDIDATES = {
    frozenset(needs): _candidates(frozenset(needs)) for needs in (("voice", "sms"), ("voice",), ("sms",))
}
_INSERT_BINDING = insert(_bindings)
_CLAIM_COLUMNS = ("proxy_number", "party", "binding_id", "role", "other_party", "expires_at")
# Both parties' claims in one statement. ON CONFLICT DO NOTHING waits for a concurrent claim of the same
# key to commit or roll back, as a plain INSERT does, but reports the conflict (fewer rows returned)
# without aborting the transaction, so no savepoint is needed. Written as text because SQLAlchemy does
# not cache the compiled form of a multi-row VALUES; the same SQL runs on PostgreSQL and SQLite.
_CLAIM = text(
    f"INSERT INTO binding_parties ({', '.join(_CLAIM_COLUMNS)}) VALUES "
    + ", ".join(f"({', '.join(f':{c}_{i}' for c in _CLAIM_COLUMNS)})" for i in (0, 1))
    + " ON CONFLICT DO NOTHING RETURNING party"
).bindparams(*(bindparam(f"expires_at_{i}", type_=_claims.c.expires_at.type) for i in (0, 1)))
_COUNT = (
    update(_numbers)
    .where(_numbers.c.number == bindparam("b_number"))
    .values(active_bindings=_numbers.c.active_bindings + bindparam("b_delta"))
)


def overdue(session: Session, parties: Iterable[str], now: datetime, number: str | None = None) -> list[str]:
    query = select(_claims.c.binding_id).where(
        _claims.c.party.in_(list(parties)), _claims.c.expires_at <= now
    )
    if number is not None:
        query = query.where(_claims.c.proxy_number == number)
    return sorted(set(session.connection().scalars(query)))


def claim(conn: Connection, binding: Mapping[str, Any]) -> int:
    """Insert both parties' claims unless one is taken; returns how many were inserted (2: all).

    Parties go in sorted order, so two binds sharing both parties cannot deadlock.
    """
    claims = sorted(
        (
            (binding["party_a"], "a", binding["party_b"]),
            (binding["party_b"], "b", binding["party_a"]),
        )
    )
    params = {}
    for i, (party, role, other) in enumerate(claims):
        values = (binding["proxy_number"], party, binding["id"], role, other, binding["expires_at"])
        params.update({f"{c}_{i}": v for c, v in zip(_CLAIM_COLUMNS, values, strict=True)})
    return len(conn.execute(_CLAIM, params).all())


def count(conn: Connection, deltas: Mapping[str, int]) -> int:
    """Add to numbers' active counts in one statement (in number order); returns the rows changed."""
    params = [{"b_number": n, "b_delta": d} for n, d in sorted(deltas.items())]
    return conn.execute(_COUNT, params).rowcount
