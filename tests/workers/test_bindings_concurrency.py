"""Simultaneous binds against the real database, from threads with their own connections: the database,
not Python, keeps a party off two active bindings on one number. On PostgreSQL the binds truly overlap
(and some must lose a race on the claim's key and choose again); SQLite serialises writers."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import pytest
from sqlalchemy import select

from comms.db import Database
from comms.errors import PoolExhausted
from comms.models import Binding, BindingParty, ProxyNumber
from comms.services import apps, bindings

THREADS = 50
POOL = [f"+1202555{1000 + i:04d}" for i in range(10)]
COURIER = "+14155550101"


@pytest.fixture
def setup(runtime):
    with runtime.db.session() as session:
        app, _ = apps.create_app(session, "dispatch")
        for number in POOL:
            session.add(ProxyNumber(number=number, carrier="sandbox", pool="default", active_bindings=0))
    db = Database(runtime.settings.effective_database_url, pool_size=THREADS)
    if not db.is_sqlite:
        # A connection per thread, opened before the start line so the binds themselves overlap.
        warm = [db.engine.connect() for _ in range(THREADS)]
        for conn in warm:
            conn.close()
    yield app, db
    db.dispose()


def run_at_once(db: Database, app, pairs: list[tuple[str, str]]) -> list:
    start = threading.Barrier(len(pairs))
    results: list = [None] * len(pairs)

    def bind(i: int, a: str, b: str) -> None:
        start.wait()
        with db.sessionmaker() as session:
            try:
                results[i] = bindings.create(session, app, {"party_a": a, "party_b": b}).proxy_number
            except Exception as exc:  # noqa: BLE001 - collected and asserted on below
                results[i] = exc

    threads = [threading.Thread(target=bind, args=(i, a, b)) for i, (a, b) in enumerate(pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def state(runtime):
    with runtime.db.session() as session:
        active = session.execute(
            select(Binding.proxy_number, Binding.party_a, Binding.party_b).where(Binding.status == "active")
        ).all()
        counts = dict(session.execute(select(ProxyNumber.number, ProxyNumber.active_bindings)).all())
        claims = session.execute(select(BindingParty.proxy_number, BindingParty.party)).all()
    return active, counts, claims


def test_fifty_simultaneous_bindings_for_one_party_use_each_number_once(runtime, setup, caplog):
    app, db = setup
    caplog.set_level(logging.DEBUG, logger="comms.services.claims")
    results = run_at_once(db, app, [(COURIER, f"+1415555{2000 + i:04d}") for i in range(THREADS)])
    won = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert all(isinstance(r, PoolExhausted) for r in refused), refused
    # At most one per number, and pool_exhausted only once every number was taken.
    assert sorted(won) == sorted(POOL)
    active, counts, claims = state(runtime)
    assert sorted(n for n, _, _ in active) == sorted(POOL)
    assert counts == dict.fromkeys(POOL, 1)
    assert len(claims) == len(set(claims)) == 2 * len(POOL)
    if runtime.db.engine.dialect.name == "postgresql":
        conflicts = [r for r in caplog.records if r.getMessage().startswith("claim conflict")]
        assert conflicts, "the binds did not overlap: no claim ever lost a race"


def test_simultaneous_bindings_of_different_parties_share_numbers_and_keep_counts(runtime, setup):
    app, db = setup
    pairs = [(f"+1415555{2000 + i:04d}", f"+1415555{3000 + i:04d}") for i in range(THREADS)]
    results = run_at_once(db, app, pairs)
    assert all(isinstance(r, str) for r in results), [r for r in results if not isinstance(r, str)]
    active, counts, claims = state(runtime)
    assert len(active) == THREADS
    assert counts == {n: c for n, c in Counter(n for n, _, _ in active).items()} | {
        n: 0 for n in POOL if n not in {a for a, _, _ in active}
    }
    assert len(claims) == 2 * THREADS
