"""Property: after any sequence of bind, release, time passing and the expiry job, no party holds two
active bindings on one number, the per-number counts match the bindings, and ``pool_exhausted`` is
answered exactly when no valid number existed. Runs against the real database of the run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from comms.errors import PoolExhausted, SameParty
from comms.models import Binding, BindingParty, Interaction, ProxyNumber, utcnow
from comms.services import apps, bindings

NUMBERS = ["+12025551000", "+12025551001"]
PARTIES = ["+14155550101", "+14155550102", "+14155550103"]

party = st.integers(0, len(PARTIES) - 1)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("bind"), party, party, st.integers(1, 40)),
        st.tuples(st.just("release"), st.integers(0, 50)),
        st.tuples(st.just("tick"), st.integers(1, 30)),
        st.tuples(st.just("expire")),
    ),
    max_size=40,
)


@dataclass
class Bound:
    id: str
    number: str
    parties: frozenset[str]
    expires_at: datetime
    released: bool = False

    def active(self, now: datetime) -> bool:
        return not self.released and self.expires_at > now


def _reset(runtime) -> None:
    with runtime.db.session() as session:
        for model in (Interaction, BindingParty, Binding, ProxyNumber):
            session.execute(delete(model))
        for number in NUMBERS:
            session.add(ProxyNumber(number=number, carrier="sandbox", pool="default", active_bindings=0))


def _check_database(runtime, now: datetime) -> None:
    with runtime.db.session() as session:
        rows = session.execute(
            select(
                Binding.proxy_number, Binding.party_a, Binding.party_b, Binding.expires_at, Binding.id
            ).where(Binding.status == "active")
        ).all()
        counts = dict(session.execute(select(ProxyNumber.number, ProxyNumber.active_bindings)).all())
        claims = session.execute(
            select(BindingParty.proxy_number, BindingParty.party, BindingParty.binding_id)
        ).all()
    live = [r for r in rows if r.expires_at > now]
    held = Counter((r.proxy_number, p) for r in live for p in (r.party_a, r.party_b))
    assert all(n == 1 for n in held.values()), held
    assert Counter(r.proxy_number for r in rows) == Counter({n: c for n, c in counts.items() if c}), counts
    assert sorted(claims) == sorted((r.proxy_number, p, r.id) for r in rows for p in (r.party_a, r.party_b))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_no_party_holds_two_active_bindings_on_one_number(runtime, ops):
    _reset(runtime)
    with runtime.db.session() as session:
        app, _ = apps.create_app(session, "property")
    now = utcnow()
    model: list[Bound] = []
    for op in ops:
        if op[0] == "bind":
            a, b, ttl = PARTIES[op[1]], PARTIES[op[2]], op[3]
            valid = [
                n
                for n in NUMBERS
                if not any(x.active(now) and x.number == n and x.parties & {a, b} for x in model)
            ]
            with runtime.db.sessionmaker() as session:
                try:
                    made = bindings.create(session, app, {"party_a": a, "party_b": b, "ttl": ttl}, now=now)
                except SameParty:
                    assert a == b
                    continue
                except PoolExhausted:
                    assert a != b and valid == [], f"pool_exhausted while {valid} were free"
                    continue
            assert a != b and made.proxy_number in valid
            model.append(Bound(made.id, made.proxy_number, frozenset({a, b}), made.expires_at))
        elif op[0] == "release" and model:
            target = model[op[1] % len(model)]
            with runtime.db.sessionmaker() as session:
                found = bindings.get(session, app.id, target.id)
                ended = bindings.release(session, found, now=now)
                session.commit()
            if target.active(now):
                assert ended.status == "released"
                target.released = True
            else:
                assert ended.status != "active"
        elif op[0] == "tick":
            now += timedelta(seconds=op[1])
        elif op[0] == "expire":
            due = {x.id for x in model if not x.released and x.expires_at <= now}
            with runtime.db.session() as session:
                marked = set(session.scalars(select(Binding.id).where(Binding.status == "expired")))
            assert bindings.expire_due(runtime, now=now) == len(due - marked)
        _check_database(runtime, now)
    with runtime.db.session() as session:
        for binding in session.scalars(select(Binding)):
            expected = next(x for x in model if x.id == binding.id)
            shown = bindings.effective_status(binding, now)
            assert (shown == "active") == expected.active(now)
