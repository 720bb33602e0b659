"""What `app/metrics.py` costs per request: the ASGI middleware, in process, no network.

A = a FastAPI app with one route `/v1/cases/{case_id}` wrapped in RequestMetricsMiddleware;
B = the same app without it. Requests are driven straight through ASGI (no server, no sockets),
so the difference is the middleware alone: timing, the wrapped `send`, the label lookup and
the histogram observation. Rounds alternate A/B/A/B; medians are reported, with the bare cost
of `Metrics.observe_request`.

    .venv/bin/python bench/metrics_overhead.py [--requests N] [--rounds R]

Prints one JSON object on stdout. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import FastAPI  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402
from starlette.types import ASGIApp, Message  # noqa: E402

from app.metrics import Metrics, RequestMetricsMiddleware  # noqa: E402


def build(metrics: Metrics | None) -> ASGIApp:
    app = FastAPI()

    @app.get("/v1/cases/{case_id}")
    async def read(case_id: int) -> dict[str, int]:
        return {"id": case_id}

    if metrics is not None:
        app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app


async def drive(app: ASGIApp, n: int) -> float:
    """Seconds per request over `n` GETs of distinct ids."""

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Message) -> None:
        return None

    started = time.perf_counter()
    for i in range(n):
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"/v1/cases/{i + 1}",
            "raw_path": f"/v1/cases/{i + 1}".encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    metrics = Metrics(create_engine("sqlite://"))
    with_metrics, without = build(metrics), build(None)
    asyncio.run(drive(with_metrics, 2000))  # warm-up: routes compiled, label child created
    asyncio.run(drive(without, 2000))
    a: list[float] = []
    b: list[float] = []
    for _ in range(args.rounds):
        a.append(asyncio.run(drive(with_metrics, args.requests)))
        b.append(asyncio.run(drive(without, args.requests)))
    n = 200_000
    started = time.perf_counter()
    for _ in range(n):
        metrics.observe_request("GET", "/v1/cases/{case_id}", 200, 0.003)
    observe = (time.perf_counter() - started) / n
    with_us, without_us = statistics.median(a) * 1e6, statistics.median(b) * 1e6
    print(
        json.dumps(
            {
                "requests_per_round": args.requests,
                "rounds": args.rounds,
                "with_middleware_us_per_request": round(with_us, 2),
                "without_middleware_us_per_request": round(without_us, 2),
                "middleware_overhead_us_per_request": round(with_us - without_us, 2),
                "observe_request_us": round(observe * 1e6, 3),
                "python": sys.version.split()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
