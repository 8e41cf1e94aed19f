"""Benchmark: end-to-end delivery throughput — messages accepted by the batch API until every one is
``delivered`` — through (a) the sandbox carrier or (b) the twilio SDK against the local emulator,
both with simulated carrier latency. Prints one JSON line.

    python bench/delivery.py --carrier sandbox --messages 10000 --latency 0.1
    python bench/delivery.py --carrier twilio --messages 3000 --latency 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
import loadgen
from sqlalchemy import create_engine, func, select

from comms.models import Message

ACCOUNT_SID = "AC" + "c3" * 16
AUTH_TOKEN = "bench-token"


def carrier_config(kind: str, latency: float, emulator_url: str | None, api_url: str) -> str:
    if kind == "sandbox":
        return (
            f'[carriers.sandbox]\ntype = "sandbox"\nlatency = {latency}\ndelivery_delay = 0.2\n'
            '[[routes]]\nprefix = ""\ncarrier = "sandbox"\n'
        )
    return (
        f'[carriers.twilio]\ntype = "twilio"\naccount_sid = "{ACCOUNT_SID}"\nauth_token = "{AUTH_TOKEN}"\n'
        f'from = "+15005550006"\napi_base_url = "{emulator_url}"\nwebhook_base_url = "{api_url}"\n'
        'max_connections = 128\n[[routes]]\nprefix = ""\ncarrier = "twilio"\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--carrier", choices=["sandbox", "twilio"], default="sandbox")
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=100, help="hand-offs in flight per worker")
    parser.add_argument("--api-workers", type=int, default=2)
    args = parser.parse_args()

    api_port = harness.free_port()
    emulator = None
    emulator_url = None
    if args.carrier == "twilio":
        emu_port = harness.free_port()
        emulator = subprocess.Popen(
            [
                sys.executable,
                "-c",
                (
                    "from comms.carriers.emulator import serve; "
                    f"serve('127.0.0.1', {emu_port}, {{'account_sid': '{ACCOUNT_SID}', "
                    f"'auth_token': '{AUTH_TOKEN}', 'latency': {args.latency}, 'delivery_delay': 0.2, "
                    "'callback_workers': 16})"
                ),
            ]
        )
        emulator_url = f"http://127.0.0.1:{emu_port}"
    config = Path(tempfile.mkdtemp()) / "carriers.toml"
    config.write_text(
        carrier_config(args.carrier, args.latency, emulator_url, f"http://127.0.0.1:{api_port}")
    )
    extra = {
        "COMMS_CONFIG": str(config),
        "COMMS_DELIVERY_CONCURRENCY": str(args.concurrency),
        "COMMS_BATCH_CHUNK_SIZE": str(args.concurrency),
    }
    try:
        with harness.environment(**extra) as env:
            key, template_id = harness.create_app_with_template(env, "Your parcel {{order}} is on its way")
            engine = create_engine(env["COMMS_DATABASE_URL"])
            with (
                harness.gunicorn(env, workers=args.api_workers, port=api_port) as port,
                harness.workers(env, count=args.workers),
            ):
                time.sleep(2)  # workers connect and register
                batches = (args.messages + 999) // 1000

                def request(n: int):
                    entries = [
                        {"to": f"+1415{2_000_000 + n * 1000 + i:07d}", "params": {"order": str(i)}}
                        for i in range(min(1000, args.messages - n * 1000))
                    ]
                    body = {"template_id": template_id, "messages": entries}
                    return "/v1/messages/batch", loadgen.json_body(body), {"Authorization": f"Bearer {key}"}

                started = time.perf_counter()
                accepted = loadgen.run(
                    "127.0.0.1", port, request, total=batches, concurrency=2, keep_bodies=True
                )
                if set(accepted.statuses) != {202} or any(json.loads(b)["rejected"] for b in accepted.bodies):
                    raise SystemExit(f"batch refused: {accepted.statuses} {accepted.bodies[0][:300]}")
                accept_seconds = time.perf_counter() - started
                delivered = 0
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    with engine.connect() as conn:
                        delivered = conn.scalar(
                            select(func.count()).select_from(Message).where(Message.status == "delivered")
                        )
                    if delivered >= args.messages:
                        break
                    time.sleep(0.2)
                elapsed = time.perf_counter() - started
                with engine.connect() as conn:
                    by_status = dict(
                        conn.execute(select(Message.status, func.count()).group_by(Message.status)).all()
                    )
            engine.dispose()
    finally:
        if emulator:
            emulator.terminate()
            emulator.wait(10)
    print(
        json.dumps(
            {
                "bench": f"delivery_{args.carrier}",
                "database": env["_BENCH_DB"],
                "cores": os.cpu_count(),
                "messages": args.messages,
                "carrier_latency_s": args.latency,
                "workers": args.workers,
                "in_flight_per_worker": args.concurrency,
                "accept_s": round(accept_seconds, 2),
                "accept_statuses": accepted.summary()["statuses"],
                "seconds": round(elapsed, 2),
                "delivered_per_s": round(delivered / elapsed, 1),
                "by_status": by_status,
            }
        )
    )


if __name__ == "__main__":
    main()
