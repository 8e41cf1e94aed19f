"""Benchmark of masked numbers at scale. Prints one JSON line.

python bench/bindings.py [--numbers 1000] [--active 100000] [--binds 5000] [--concurrency 16]
                         [--api-workers 4] [--routes 5000] [--service-binds 5000] [--service-threads 8]

Seeds ``--numbers`` proxy numbers and ``--active`` active bindings (1,000 couriers with 100 customers
each, every courier's bindings on distinct numbers), then measures:

- ``binds_per_s``: POST /v1/bindings through gunicorn, ``--concurrency`` clients, each bind an existing
  courier (who already holds 100 numbers) with a new customer: choosing the least-used free number,
  the claims and the count, committed;
- ``bind_cpu_ms``: CPU (API processes + database server) per bind, and ``binds_per_s_per_core`` from it:
  what a bind costs whatever else the machine runs (``binds_per_s`` depends on that: ``load_average``);
- ``service_binds_per_s``: bindings.create called from ``--service-threads`` threads in process, for the
  database side of a bind alone;
- ``route_*``: routing an inbound call, in process — the one-query lookup of (proxy number, caller)
  plus the insert of its interaction row, committed — for random seeded parties (``route_*_durable``:
  the same waiting for each row's WAL flush, which the routing path does not, on PostgreSQL);
- ``voice_webhook_*``: the same through HTTP: a signed POST /webhooks/twilio/voice answered with the
  <Dial> TwiML by gunicorn, one request at a time.

Set COMMS_DATABASE_URL (for example postgresql+psycopg://postgres@127.0.0.1:5432/test_masked) to run on
PostgreSQL; without it a fresh SQLite file is used.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import harness
import loadgen
from sqlalchemy import bindparam, func, insert, select, text
from twilio.request_validator import RequestValidator

from comms.models import Binding, BindingParty, ProxyNumber, utcnow
from comms.runtime import Runtime
from comms.services import apps, bindings, proxy_routing
from comms.settings import Settings

AUTH_TOKEN = "bench-auth-token"
ACCOUNT_SID = "AC" + "be" * 16
PER_COURIER = 100


def number(i: int) -> str:
    return f"+1202{5_000_000 + i:07d}"


def courier(i: int) -> str:
    return f"+1628{2_000_000 + i:07d}"


def customer(i: int) -> str:
    return f"+1415{2_000_000 + i:07d}"


def cpu_seconds(pids) -> dict[int, float]:
    """user + system CPU seconds of each live process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / tick
    return found


def gunicorn_pids(port: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"gunicorn" in cmdline and f"127.0.0.1:{port}".encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def backend_pids(runtime: Runtime) -> list[int]:
    """The PostgreSQL server processes serving this database (none for SQLite)."""
    if runtime.db.is_sqlite:
        return []
    with runtime.db.engine.connect() as conn:
        return list(conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")))


class CpuMeter:
    """CPU seconds spent by the API processes and the database server between start() and stop(): what
    an operation costs whatever else the machine is running (the throughput figures depend on that)."""

    def __init__(self, runtime: Runtime, port: int | None):
        self.runtime, self.port = runtime, port

    def __enter__(self):
        self.api = cpu_seconds(gunicorn_pids(self.port)) if self.port else {}
        self.db = cpu_seconds(backend_pids(self.runtime))
        self.own = time.process_time()
        return self

    def __exit__(self, *exc):
        api = cpu_seconds(gunicorn_pids(self.port)) if self.port else {}
        db = cpu_seconds(backend_pids(self.runtime))
        self.api_seconds = sum(v - self.api.get(pid, 0.0) for pid, v in api.items())
        self.db_seconds = sum(v - self.db.get(pid, 0.0) for pid, v in db.items())
        self.own_seconds = time.process_time() - self.own


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


def seed(runtime: Runtime, app_id: str, numbers: int, active: int) -> list[tuple[str, str]]:
    """Bulk-insert the pool and the active bindings; returns (proxy number, party) pairs to route."""
    now = utcnow()
    expires = now + timedelta(days=30)
    couriers = active // PER_COURIER
    step = max(1, numbers // PER_COURIER)
    counts = [0] * numbers
    routable = []
    with runtime.db.session() as session:
        session.execute(
            insert(ProxyNumber),
            [
                {
                    "number": number(i),
                    "carrier": "twilio",
                    "pool": "default",
                    "voice": True,
                    "sms": True,
                    "active_bindings": 0,
                    "created_at": now,
                }
                for i in range(numbers)
            ],
        )
    for start in range(0, active, 10_000):
        rows, claims = [], []
        for i in range(start, min(active, start + 10_000)):
            c, j = divmod(i, PER_COURIER)
            proxy = number((c + j * step) % numbers)
            counts[(c + j * step) % numbers] += 1
            binding_id = f"bnd_seed{i:010d}"
            a, b = courier(c % couriers), customer(i)
            rows.append(
                {
                    "id": binding_id,
                    "app_id": app_id,
                    "proxy_number": proxy,
                    "party_a": a,
                    "party_b": b,
                    "pool": "default",
                    "record": False,
                    "client_ref": None,
                    "status": "active",
                    "expires_at": expires,
                    "ended_at": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            claims += [
                {
                    "proxy_number": proxy,
                    "party": a,
                    "binding_id": binding_id,
                    "role": "a",
                    "other_party": b,
                    "expires_at": expires,
                },
                {
                    "proxy_number": proxy,
                    "party": b,
                    "binding_id": binding_id,
                    "role": "b",
                    "other_party": a,
                    "expires_at": expires,
                },
            ]
            if i % 20 == 0:
                routable.append((proxy, a if i % 40 else b))
        with runtime.db.session() as session:
            session.execute(insert(Binding), rows)
            session.execute(insert(BindingParty), claims)
    with runtime.db.session() as session:
        table = ProxyNumber.__table__
        session.connection().execute(
            table.update().where(table.c.number == bindparam("b_n")).values(active_bindings=bindparam("b_k")),
            [{"b_n": number(i), "b_k": k} for i, k in enumerate(counts)],
        )
    with runtime.db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return routable


def bench_service_binds(runtime: Runtime, app_id: str, total: int, threads: int, first: int) -> dict:
    """bindings.create called directly from ``threads`` threads, each with its own session: the
    database side of a bind (choose, claim, count, commit) without HTTP, auth and JSON around it."""
    from comms.models import App

    with runtime.db.sessionmaker() as session:
        app = session.get(App, app_id)
        session.expunge(app)
    couriers = len({courier(i) for i in range(1000)})
    counter = iter(range(total))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            with runtime.db.sessionmaker() as session:
                bindings.create(
                    session, app, {"party_a": courier(n % couriers), "party_b": customer(first + n)}
                )

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "service_threads": threads,
        "service_binds": total,
        "service_binds_per_s": round(total / elapsed, 1),
    }


def bench_routing(runtime: Runtime, routable: list[tuple[str, str]], count: int, tag: str = "") -> dict:
    sample = random.sample(routable, min(count, len(routable)))
    for proxy, caller in sample[:200]:  # warm up: connections, statement caches
        proxy_routing.route_call(runtime.db.engine, None, caller, proxy)
    times = []
    with CpuMeter(runtime, None) as cpu:
        for n, (proxy, caller) in enumerate(sample):
            started = time.perf_counter()
            routed = proxy_routing.route_call(runtime.db.engine, f"CAroute{tag}{n:020d}", caller, proxy)
            times.append(time.perf_counter() - started)
            assert routed is not None
    suffix = f"_{tag}" if tag else ""
    return {
        f"route_calls{suffix}": len(times),
        f"route_p50_ms{suffix}": round(percentile(times, 50) * 1000, 3),
        f"route_p99_ms{suffix}": round(percentile(times, 99) * 1000, 3),
        f"route_cpu_ms{suffix}": round((cpu.own_seconds + cpu.db_seconds) / len(times) * 1000, 3),
    }


def bench_voice_webhook(port: int, routable: list[tuple[str, str]], count: int) -> dict:
    url = f"http://127.0.0.1:{port}/webhooks/twilio/voice"
    validator = RequestValidator(AUTH_TOKEN)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, statuses = [], {}
    for n, (proxy, caller) in enumerate(random.sample(routable, min(count, len(routable)))):
        form = {
            "CallSid": f"CAhttp{n:028d}",
            "AccountSid": ACCOUNT_SID,
            "From": caller,
            "To": proxy,
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, form),
        }
        started = time.perf_counter()
        conn.request("POST", "/webhooks/twilio/voice", body=urlencode(form), headers=headers)
        response = conn.getresponse()
        body = response.read()
        times.append(time.perf_counter() - started)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        assert b"<Dial" in body, body
        if response.will_close:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()
    return {
        "voice_webhook_p50_ms": round(percentile(times[100:], 50) * 1000, 3),
        "voice_webhook_p99_ms": round(percentile(times[100:], 99) * 1000, 3),
        "voice_webhook_statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--active", type=int, default=100_000)
    parser.add_argument("--binds", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--api-workers", type=int, default=4)
    parser.add_argument("--routes", type=int, default=5000)
    parser.add_argument("--service-binds", type=int, default=5000)
    parser.add_argument("--service-threads", type=int, default=8)
    args = parser.parse_args()
    config = Path(tempfile.mkdtemp()) / "carriers.toml"
    config.write_text(
        '[carriers.sandbox]\ntype = "sandbox"\n'
        f'[carriers.twilio]\ntype = "twilio"\naccount_sid = "{ACCOUNT_SID}"\nauth_token = "{AUTH_TOKEN}"\n'
        'api_base_url = "http://127.0.0.1:9"\n'
        '[[routes]]\nprefix = ""\ncarrier = "sandbox"\n'
    )
    with harness.environment(COMMS_CONFIG=str(config)) as env:
        runtime = Runtime(Settings.from_env(env))
        with runtime.db.session() as session:
            app, key = apps.create_app(session, "dispatch")
            app_id = app.id
        started = time.perf_counter()
        routable = seed(runtime, app_id, args.numbers, args.active)
        seed_seconds = time.perf_counter() - started
        couriers = args.active // PER_COURIER
        headers = {"Authorization": f"Bearer {key}"}

        def bind(n: int):
            body = {"party_a": courier(n % couriers), "party_b": customer(args.active + n), "ttl": 3600}
            return "/v1/bindings", loadgen.json_body(body), headers

        with harness.gunicorn(env, workers=args.api_workers) as port:
            warm = loadgen.run(
                "127.0.0.1",
                port,
                lambda n: bind(n + 10 * args.binds),
                total=300,
                concurrency=args.concurrency,
            )
            assert set(warm.statuses) == {201}, warm.statuses
            with CpuMeter(runtime, port) as cpu:
                binds = loadgen.run("127.0.0.1", port, bind, total=args.binds, concurrency=args.concurrency)
            assert set(binds.statuses) == {201}, binds.statuses
            service = bench_service_binds(
                runtime, app_id, args.service_binds, args.service_threads, args.active + 20 * args.binds
            )
            routing = bench_routing(runtime, routable, args.routes)
            proxy_routing.ASYNC_CALL_LOG = False  # the same with each interaction row flushed to disk
            durable = bench_routing(runtime, routable, args.routes, tag="durable")
            proxy_routing.ASYNC_CALL_LOG = True
            webhook = bench_voice_webhook(port, routable, min(args.routes, 2000) + 100)
        with runtime.db.session() as session:
            active = session.scalar(
                select(func.count()).select_from(Binding).where(Binding.status == "active")
            )
        runtime.close()
    b = binds.summary()
    bind_cpu_ms = (cpu.api_seconds + cpu.db_seconds) / b["requests"] * 1000
    print(
        json.dumps(
            {
                "bench": "bindings",
                "database": env["_BENCH_DB"],
                "cores": os.cpu_count(),
                "numbers": args.numbers,
                "active_bindings_at_start": args.active,
                "active_bindings_at_end": active,
                "seed_seconds": round(seed_seconds, 1),
                "gunicorn_workers": args.api_workers,
                "concurrency": args.concurrency,
                "binds": b["requests"],
                "binds_per_s": b["requests_per_s"],
                "bind_p50_ms": b["p50_ms"],
                "bind_p99_ms": b["p99_ms"],
                "bind_cpu_ms": round(bind_cpu_ms, 2),
                "bind_cpu_ms_api": round(cpu.api_seconds / b["requests"] * 1000, 2),
                "bind_cpu_ms_db": round(cpu.db_seconds / b["requests"] * 1000, 2),
                "binds_per_s_per_core": round(1000 / bind_cpu_ms, 1),
                "load_average": round(os.getloadavg()[0], 2),
                **service,
                **routing,
                **(durable if env["_BENCH_DB"] == "postgresql" else {}),
                **webhook,
            }
        )
    )


if __name__ == "__main__":
    main()
