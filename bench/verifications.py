"""Benchmarks of login codes. Each run prints one JSON line.

python bench/verifications.py pairs [--pairs 5000] [--concurrency 32] [--api-workers 4]
    start + check pairs per second at the API (gunicorn): every rate limit, the fraud guard,
    the keyed hash and the row-locked check run; no worker competes for the CPU. The starts go
    first, then the checks (each check needs its start's code, read from Redis as a phone would
    read the SMS); pairs/s = pairs ÷ (time of all starts + time of all checks).

python bench/verifications.py handoff [--bulk 10000] [--workers 2] [--verify-workers 0]
    p50/p99 from POST /v1/verifications to the carrier hand-off (the worker claiming the code's
    message, just before it calls the carrier; and the sandbox carrier's accept, after its
    simulated latency) while --bulk notifications drain through the same workers. The
    codes go to a second app, so its sandbox outbox holds only them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC
from pathlib import Path

import harness
import loadgen
import requests
from sqlalchemy import func, select

from comms.models import App, Message, MessageEvent
from comms.runtime import Runtime
from comms.settings import Settings

# Every limit stays on, with caps a benchmark's thousands of distinct numbers never reach.
BENCH_VERIFICATION = {"max_sends_per_country_per_day": 0, "fraud_guard_min_sends": 1_000_000}


def configure(env: dict[str, str], app_name: str | None = None) -> tuple[str, str]:
    """An app for the codes (its id and key) with the benchmark's verification settings."""
    from comms.services import apps

    runtime = Runtime(Settings.from_env(env))
    with runtime.db.session() as session:
        app, key = apps.create_app(session, app_name or "login")
        app.verification = dict(BENCH_VERIFICATION)
        app_id = app.id
    runtime.close()
    return app_id, key


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


def pairs(args) -> dict:
    with harness.environment() as env:
        _, key = configure(env)
        headers = {"Authorization": f"Bearer {key}"}
        runtime = Runtime(Settings.from_env(env))

        def start(n: int):
            body = {
                "to": f"+1415{2_000_000 + n % 7_000_000:07d}",
                "client_ip": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
            }
            return "/v1/verifications", loadgen.json_body(body), headers

        with harness.gunicorn(env, workers=args.api_workers) as port:
            warm = loadgen.run("127.0.0.1", port, lambda n: start(n + 5_000_000), total=500, concurrency=8)
            assert set(warm.statuses) == {201}, warm.statuses
            starts = loadgen.run(
                "127.0.0.1", port, start, total=args.pairs, concurrency=args.concurrency, keep_bodies=True
            )
            assert set(starts.statuses) == {201}, (starts.statuses, starts.bodies[:3])
            ids = [json.loads(b)["id"] for b in starts.bodies]
            found = runtime.redis.mget([f"comms:verify:code:{i}" for i in ids])
            codes = [c.decode() for c in found]

            def check(n: int):
                body = {"verification_id": ids[n], "code": codes[n]}
                return "/v1/verifications/check", loadgen.json_body(body), headers

            checks = loadgen.run(
                "127.0.0.1", port, check, total=len(ids), concurrency=args.concurrency, keep_bodies=True
            )
        approved = sum(json.loads(b)["valid"] for b in checks.bodies)
        runtime.close()
    s, c = starts.summary(), checks.summary()
    return {
        "bench": "verification_pairs",
        "database": env["_BENCH_DB"],
        "cores": os.cpu_count(),
        "gunicorn_workers": args.api_workers,
        "concurrency": args.concurrency,
        "pairs": len(ids),
        "approved": approved,
        "pairs_per_s": round(len(ids) / (starts.elapsed + checks.elapsed), 1),
        "starts_per_s": s["requests_per_s"],
        "start_p50_ms": s["p50_ms"],
        "start_p99_ms": s["p99_ms"],
        "checks_per_s": c["requests_per_s"],
        "check_p50_ms": c["p50_ms"],
        "check_p99_ms": c["p99_ms"],
        "statuses": {"start": s["statuses"], "check": c["statuses"]},
    }


def handoff(args) -> dict:
    config = Path(tempfile.mkdtemp()) / "carriers.toml"
    config.write_text(
        f'[carriers.sandbox]\ntype = "sandbox"\nlatency = {args.latency}\ndelivery_delay = 0.2\n'
        "outbox_size = 5000\n"
        '[[routes]]\nprefix = ""\ncarrier = "sandbox"\n'
    )
    extra = {
        "COMMS_CONFIG": str(config),
        "COMMS_DELIVERY_CONCURRENCY": str(args.concurrency),
        "COMMS_BATCH_CHUNK_SIZE": str(args.chunk),
    }
    with harness.environment(**extra) as env:
        bulk_key, template_id = harness.create_app_with_template(env, "Your parcel {{order}} is on its way")
        login_id, login_key = configure(env)
        runtime = Runtime(Settings.from_env(env))
        with (
            harness.gunicorn(env, workers=args.api_workers) as port,
            harness.workers(env, count=args.workers),
            harness.workers(env, count=args.verify_workers, queues="verify"),
        ):
            base = f"http://127.0.0.1:{port}"
            time.sleep(2)  # workers connect and register
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {login_key}"
            samples: list[tuple[float, str, str]] = []
            responded: list[float] = []
            number = iter(range(10_000_000))

            def post_code(tag: str) -> None:
                posted = time.time()
                r = http.post(
                    f"{base}/v1/verifications",
                    json={"to": f"+1628{2_000_000 + next(number):07d}"},
                    timeout=30,
                )
                assert r.status_code == 201, r.text
                samples.append((posted, r.json()["send_attempts"][0]["message_id"], tag))
                responded.append(time.time() - posted)

            for _ in range(30):  # warm up: every worker's first jobs, connections, Lua scripts
                post_code("warm")
                time.sleep(0.1)
            time.sleep(1)
            for _ in range(40):  # idle: nothing else queued
                post_code("idle")
                time.sleep(0.1)
            time.sleep(1)

            def submit_bulk():
                def batch(n: int):
                    entries = [
                        {"to": f"+1415{3_000_000 + n * 1000 + i:07d}", "params": {"order": str(i)}}
                        for i in range(min(1000, args.bulk - n * 1000))
                    ]
                    body = {"template_id": template_id, "messages": entries}
                    return (
                        "/v1/messages/batch",
                        loadgen.json_body(body),
                        {"Authorization": f"Bearer {bulk_key}"},
                    )

                loadgen.run("127.0.0.1", port, batch, total=(args.bulk + 999) // 1000, concurrency=2)

            submitter = threading.Thread(target=submit_bulk)
            started = time.perf_counter()
            submitter.start()
            with runtime.db.session() as session:
                bulk_app = session.scalar(select(App.id).where(App.name == "bench"))
            remaining = args.bulk
            while remaining > 0 and time.perf_counter() - started < 600:
                # "submit": while the batch requests still occupy the API; "drain": only the workers are busy.
                post_code("submit" if submitter.is_alive() else "drain")
                time.sleep(args.interval)
                if len(samples) % 10 == 0:
                    with runtime.db.session() as session:
                        left = session.scalar(
                            select(func.count())
                            .select_from(Message)
                            .where(Message.app_id == bulk_app, Message.status.in_(("queued", "sending")))
                        )
                        total = session.scalar(
                            select(func.count()).select_from(Message).where(Message.app_id == bulk_app)
                        )
                    remaining = left + (args.bulk - total)
            drain_seconds = time.perf_counter() - started
            submitter.join()
            time.sleep(2)  # the last codes go out
            with runtime.db.session() as session:
                claimed = dict(
                    session.execute(
                        select(MessageEvent.message_id, func.min(MessageEvent.at))
                        .where(
                            MessageEvent.status == "sending",
                            MessageEvent.message_id.in_([m for _, m, _ in samples]),
                        )
                        .group_by(MessageEvent.message_id)
                    ).all()
                )
            outbox = {
                item["reference"]: item["at"]
                for item in (
                    json.loads(raw)
                    for raw in runtime.redis.lrange(f"comms:sandbox:sandbox:outbox:{login_id}", 0, -1)
                )
            }
        runtime.close()

    def claim_at(m):
        at = claimed.get(m)
        return at.replace(tzinfo=at.tzinfo or UTC).timestamp() if at else None

    # "bulk" is the whole time the 10,000 were in flight: "submit" (the batch requests still occupy
    # the API) and "drain" (only the workers are busy).
    groups = {"idle": {"idle"}, "bulk": {"submit", "drain"}, "submit": {"submit"}, "drain": {"drain"}}
    result = {
        "bench": "verification_handoff_during_bulk",
        "database": env["_BENCH_DB"],
        "cores": os.cpu_count(),
        "bulk_messages": args.bulk,
        "carrier_latency_s": args.latency,
        "api_workers": args.api_workers,
        "workers_all_queues": args.workers,
        "workers_verify_only": args.verify_workers,
        "in_flight_per_worker": args.concurrency,
        "bulk_chunk": args.chunk,
        "drain_s": round(drain_seconds, 2),
        "bulk_per_s": round(args.bulk / drain_seconds, 1) if args.bulk else None,
    }
    for name, tags in groups.items():
        chosen = [(posted, m) for posted, m, t in samples if t in tags]
        to_claim = [claim_at(m) - posted for posted, m in chosen if claim_at(m) is not None]
        to_accept = [outbox[m] - posted for posted, m in chosen if m in outbox]
        result[f"{name}_codes"] = len(chosen)
        result[f"{name}_handoff_p50_ms"] = round(percentile(to_claim, 50) * 1000, 1)
        result[f"{name}_handoff_p99_ms"] = round(percentile(to_claim, 99) * 1000, 1)
        result[f"{name}_carrier_accepted_p99_ms"] = round(percentile(to_accept, 99) * 1000, 1)
        if name == "bulk":
            result["bulk_handoff_max_ms"] = round(max(to_claim, default=0) * 1000, 1)
            result["bulk_codes_not_handed_off"] = len(chosen) - len(to_claim)
    if os.environ.get("BENCH_DUMP"):  # per code: (API response ms, hand-off ms, phase)
        dump = [
            (round(r * 1000), round((claim_at(m) - p) * 1000) if claim_at(m) else None, t)
            for (p, m, t), r in zip(samples, responded, strict=True)
        ]
        print(json.dumps(dump), file=sys.stderr)
    result["target_p99_ms"] = 200
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("pairs")
    p.add_argument("--pairs", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--api-workers", type=int, default=4)
    h = sub.add_parser("handoff")
    h.add_argument("--bulk", type=int, default=10000)
    h.add_argument("--latency", type=float, default=0.1)
    h.add_argument("--workers", type=int, default=2, help="workers on every queue, verify first")
    h.add_argument("--verify-workers", type=int, default=0, help="extra workers on the verify queue only")
    h.add_argument("--concurrency", type=int, default=64, help="hand-offs in flight per worker")
    h.add_argument("--chunk", type=int, default=100, help="bulk messages per delivery job")
    h.add_argument("--api-workers", type=int, default=2)
    h.add_argument("--interval", type=float, default=0.2, help="seconds between codes during the drain")
    args = parser.parse_args()
    print(json.dumps(pairs(args) if args.mode == "pairs" else handoff(args)))


if __name__ == "__main__":
    main()
