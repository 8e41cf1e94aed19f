"""A small asyncio HTTP/1.1 keep-alive load generator: N connections, each sending requests back to back.

Written by hand rather than using wrk or locust: it needs no system package, speaks exactly the JSON
POSTs the benchmarks send, and costs little CPU on the same machine as the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    bodies: list[bytes] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def summary(self) -> dict:
        return {
            "requests": len(self.latencies),
            "seconds": round(self.elapsed, 3),
            "requests_per_s": round(len(self.latencies) / self.elapsed, 1) if self.elapsed else 0,
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


async def _connection(
    host: str,
    port: int,
    make_request: Callable[[int], tuple[str, bytes, dict]],
    counter: list[int],
    total: int,
    results: Results,
    keep_bodies: bool,
) -> None:
    reader = writer = None
    try:
        while counter[0] < total:
            if writer is None:  # gunicorn's sync workers close after each response
                reader, writer = await asyncio.open_connection(host, port)
            n = counter[0]
            counter[0] += 1
            path, body, headers = make_request(n)
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            )
            started = time.perf_counter()
            writer.write(head.encode() + b"\r\n" + body)
            status_line = await reader.readline()
            if not status_line:  # the server dropped the connection (a worker killed at its timeout)
                results.statuses[0] = results.statuses.get(0, 0) + 1
                writer.close()
                writer = None
                continue
            length, close = 0, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            payload = await reader.readexactly(length)
            results.latencies.append(time.perf_counter() - started)
            status = int(status_line.split()[1])
            results.statuses[status] = results.statuses.get(status, 0) + 1
            if keep_bodies:
                results.bodies.append(payload)
            if close:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def run(
    host: str, port: int, make_request, *, total: int, concurrency: int, keep_bodies: bool = False
) -> Results:
    """Send ``total`` requests over ``concurrency`` keep-alive connections; returns latencies and statuses."""
    results = Results()
    counter = [0]

    async def main():
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _connection(host, port, make_request, counter, total, results, keep_bodies)
                for _ in range(concurrency)
            )
        )
        results.elapsed = time.perf_counter() - started

    asyncio.run(main())
    return results


def json_body(data) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
