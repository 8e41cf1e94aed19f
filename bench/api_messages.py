"""Benchmark: concurrent clients against POST /v1/messages served by gunicorn (auth, validation, insert,
enqueue). Prints one JSON line: requests/s and p50/p99 latency.

    python bench/api_messages.py [--requests 20000] [--concurrency 32] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import os

import harness
import loadgen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with harness.environment() as env:
        key, template_id = harness.create_app_with_template(env)
        headers = {"Authorization": f"Bearer {key}"}

        def request(n: int):
            body = {
                "to": f"+1415555{n % 10000:04d}",
                "template_id": template_id,
                "params": {"name": "Ada", "order": str(n)},
                "client_ref": f"bench-{n}",
            }
            return "/v1/messages", loadgen.json_body(body), headers

        with harness.gunicorn(env, workers=args.workers, threads=args.threads) as port:
            loadgen.run(
                "127.0.0.1", port, request, total=min(2000, args.requests), concurrency=args.concurrency
            )
            results = loadgen.run(
                "127.0.0.1", port, request, total=args.requests, concurrency=args.concurrency
            )
    print(
        json.dumps(
            {
                "bench": "api_messages",
                "database": env["_BENCH_DB"],
                "cores": os.cpu_count(),
                "gunicorn_workers": args.workers,
                "concurrency": args.concurrency,
                **results.summary(),
            }
        )
    )


if __name__ == "__main__":
    main()
