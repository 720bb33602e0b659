"""POST /v1/reports of the real app against a bare insert endpoint, same server, same database.

A = the real app (app.main:app_from_env: auth, grid placement, classification, routing,
deadlines, history chain, idempotency record, the full CaseOut answer).
B = bench/bare_app.py: one INSERT of the same gg_case columns per request, nothing else.
Both run under uvicorn in their own subprocess (1 worker, 127.0.0.1, --no-access-log, log
level warning) on one freshly seeded database (SQLite file by default, PostGIS with
--postgres). The load generator here keeps a fixed number of connections busy (httpx + asyncio)
for a fixed request count after a warm-up, alternating A/B/A/B; medians over rounds are reported.

    .venv/bin/python bench/intake.py [--quick] [--postgres] [--dead-webhook] [--before DIR]

--dead-webhook subscribes a receiver that refuses connections to every event and runs the
intake server with its scheduler, so its delivery worker keeps trying (and failing) while the
rounds run: intake writes the outbox rows, the worker retries in the same process.

--before DIR serves a third side, `intake_before`: the same app from another copy of the source
(e.g. `git archive HEAD | tar -x -C DIR`), set up the same way, in the same rounds (the order
rotating); so a change is measured against the code before it in one run, on one machine load.

Prints one JSON object on stdout; progress on stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import shapely
import uvicorn
from benchlib import emit, environment, log, percentiles_ms, seeded_database
from sqlalchemy import func, select
from sqlmodel import Session

from core.db import make_engine, session_scope
from core.models import User
from core.security import issue_token
from dispatch.models import Case, CaseHistory, DuplicateCandidate
from events.schemas import ReportIn
from events.service import route
from grid.demo_district import build_chancheng
from taxonomy.catalogue import TimeUnit, load_default_catalogue
from taxonomy.classifier import Classifier
from taxonomy.service import Taxonomy

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
SECRET = "gridgov-bench-intake-5b2e8f1a9c4d7063-secret"
TARGET_RATIO = 0.5
SEED = 20261123
WARN_FRACTION = 0.8  # the Settings default; only used for the bare row's warn_at

DESCRIPTIONS = (
    "井盖丢失，路口有个窨井盖不见了，行人很危险",
    "小区门口垃圾堆积好几天没人清运，气味很大",
    "有人在人行道上占道经营摆摊卖水果",
    "楼顶违章搭建铁皮房，邻居反映多次",
    "夜里装修噪音扰民，凌晨还在施工",
    "下雨后路面积水严重，积水蚊虫多",
    "路灯不亮了，晚上巷子里一片漆黑",
    "共享单车乱停乱放堵住了消防通道",
    "河涌有死鱼漂浮，水面发黑发臭",
    "工地渣土车未覆盖，沿路撒漏泥土",
    "餐馆油烟直排，楼上住户意见很大",
    "马路中间有一个大坑洞，电动车差点摔倒",
    "绿化带里有人乱扔建筑垃圾",
    "小广告贴满了电线杆和墙面",
    "街边大树倾斜，台风天有倒伏危险",
    "自来水管爆裂，路面一直在冒水",
    "电动车在楼道里充电，存在火灾隐患",
    "流浪狗在小区里咬人，居民很害怕",
    "公厕无人打扫，卫生状况很差",
    "店铺门口乱堆杂物，占用盲道",
)


@dataclass(frozen=True)
class Budget:
    warmup: int  # per server, before the timed rounds
    per_round: int  # requests per server per round
    rounds: int  # A/B pairs
    concurrency: int
    round_seconds: float  # a round stops issuing requests after this long, whatever the count
    workers: int  # distinct grid workers sending reports


FULL = Budget(warmup=200, per_round=2_000, rounds=3, concurrency=8, round_seconds=90.0, workers=921)
QUICK = Budget(warmup=40, per_round=300, rounds=2, concurrency=8, round_seconds=30.0, workers=16)


@dataclass(frozen=True)
class Reporter:
    user_id: int
    username: str
    grid_code: str
    lng: float
    lat: float
    token: str
    # Where this worker files reports: random points inside the grid (a worker walks the
    # grid), or only (lng, lat) with --one-point.
    points: tuple[tuple[float, float], ...] = ()


@dataclass
class RoundResult:
    server: str
    requests: int
    seconds: float
    latencies_s: list[float]
    non_201: dict[str, int]
    failures: list[str]
    server_cpu_s: float | None
    driver_cpu_s: float

    def summary(self) -> dict[str, Any]:
        ok = self.requests - sum(self.non_201.values())
        return {
            "requests": self.requests,
            "non_201": sum(self.non_201.values()),
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests / self.seconds, 1),
            **percentiles_ms(self.latencies_s, 50, 95, 99),
            "server_cpu_ms_per_request": (
                round(1000 * self.server_cpu_s / self.requests, 3)
                if self.server_cpu_s is not None and self.requests
                else None
            ),
            "driver_cpu_ms_per_request": round(1000 * self.driver_cpu_s / max(self.requests, 1), 3),
            "ok": ok,
        }


@dataclass
class Server:
    name: str
    path: str
    proc: subprocess.Popen[bytes]
    port: int
    stderr_path: Path
    make_body: Any = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float | None:
        """utime + stime of the server process from /proc (Linux), else None."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


# --- database -------------------------------------------------------------------------------


POINTS_PER_REPORTER = 256


def points_inside(
    shape: Any, count: int, rng: np.random.Generator
) -> tuple[tuple[float, ...], ...]:
    """`count` uniform random points (lng, lat) inside a polygon, by rejection from its box."""
    min_x, min_y, max_x, max_y = shape.bounds
    out: list[tuple[float, float]] = []
    while len(out) < count:
        xs = rng.uniform(min_x, max_x, count)
        ys = rng.uniform(min_y, max_y, count)
        inside = shapely.contains_xy(shape, xs, ys)
        out += zip(xs[inside].tolist(), ys[inside].tolist(), strict=True)
    return tuple(out[:count])


def reporters(
    url: str, count: int, rng: np.random.Generator, *, one_point: bool = False
) -> list[Reporter]:
    """Random demo grid workers (gw<grid code>), each with a token and points inside its grid."""
    shapes = {g.code: g.geometry for g in build_chancheng().grids}
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(User.id, User.username, User.token_version)
                .where(User.username.like("gw%"))  # type: ignore[attr-defined]
                .order_by(User.username)
            ).all()
    finally:
        engine.dispose()
    chosen = rng.choice(len(rows), size=min(count, len(rows)), replace=False)
    now = datetime.now(UTC)
    out = []
    for i in sorted(int(c) for c in chosen):
        user_id, username, version = rows[i]
        code = username[2:]
        point = shapes[code].representative_point()
        token = issue_token(
            secret=SECRET, user_id=user_id, token_version=version, now=now, ttl=6 * 3600
        )
        points = (
            ((point.x, point.y),)
            if one_point
            else points_inside(shapes[code], POINTS_PER_REPORTER, rng)
        )
        out.append(Reporter(user_id, username, code, point.x, point.y, token, points))
    return out


def subscribe_dead_webhook(url: str) -> None:
    """A subscription to every event at a loopback port nothing listens on."""
    from notify import webhooks

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            webhooks.add(
                session,
                url=f"http://127.0.0.1:{free_port()}/dead",
                secret="bench-dead-hook-0123456789",
                department_code=None,
                area_code=None,
                event_types=None,
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()


def outbox_counts(url: str) -> dict[str, int]:
    """What the dead subscription left: deliveries written, and attempts the worker made."""
    from notify.models import OutboxDelivery

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            deliveries = session.execute(
                select(func.count()).select_from(OutboxDelivery)
            ).scalar_one()
            attempts = session.execute(select(func.sum(OutboxDelivery.attempts))).scalar_one()
    finally:
        engine.dispose()
    return {"deliveries_written": int(deliveries), "attempts_made": int(attempts or 0)}


def count_rows(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            cases = session.execute(select(func.count()).select_from(Case)).scalar_one()
            history = session.execute(select(func.count()).select_from(CaseHistory)).scalar_one()
            candidates = session.execute(
                select(func.count()).select_from(DuplicateCandidate)
            ).scalar_one()
    finally:
        engine.dispose()
    # Duplicate candidates stored at intake (并单): how much of that work the points caused.
    return {
        "gg_case": int(cases),
        "case_history": int(history),
        "duplicate_candidate": int(candidates),
    }


# --- requests -------------------------------------------------------------------------------


class Workload:
    """Deterministic stream of (reporter, description); every request a fresh client_id."""

    def __init__(self, people: list[Reporter], rng: np.random.Generator) -> None:
        self.people = people
        self.rng = rng
        self.serial = 0
        self.run_tag = os.urandom(4).hex()
        catalogue = load_default_catalogue()
        taxonomy = Taxonomy(revision=0, catalogue=catalogue, classifier=Classifier(catalogue))
        # What intake would derive from each description (for the bare endpoint's row).
        self.routing = {}
        for text in DESCRIPTIONS:
            probe = ReportIn(client_id="x", lat=0.0, lng=0.0, description=text)
            self.routing[text] = route(probe, text, taxonomy)

    def next(self) -> tuple[Reporter, dict[str, Any], str]:
        person = self.people[int(self.rng.integers(len(self.people)))]
        text = DESCRIPTIONS[int(self.rng.integers(len(DESCRIPTIONS)))]
        lng, lat = person.points[int(self.rng.integers(len(person.points)))]
        self.serial += 1
        client_id = f"{self.run_tag}{self.serial:024x}"  # 32 hex characters, unique per run
        body = {
            "client_id": client_id,
            "lat": lat,
            "lng": lng,
            "crs": "wgs84",
            "description": text,
        }
        return person, body, text

    def real_body(self, person: Reporter, body: dict[str, Any], text: str) -> dict[str, Any]:
        return body

    def bare_body(self, person: Reporter, body: dict[str, Any], text: str) -> dict[str, Any]:
        r = self.routing[text]
        limit_s = _limit_seconds(r.time_limit_value, r.time_limit_unit)
        return {
            **body,
            "reporter_id": person.user_id,
            "channel": "grid_worker",
            "grid_code": person.grid_code,
            "grid_rule": "inside",
            "category_code": r.category_code,
            "subcategory_code": r.subcategory_code,
            "classification_score": r.classification_score,
            "department_code": r.department_code,
            "urgency": r.urgency,
            "time_limit_value": r.time_limit_value,
            "time_limit_unit": str(r.time_limit_unit),
            "warn_in_s": limit_s * WARN_FRACTION,
            "due_in_s": limit_s,
        }


def _limit_seconds(value: int, unit: TimeUnit) -> float:
    """Wall-clock stand-in for the limit (the bare endpoint has no working calendar)."""
    return value * (86_400.0 if unit is TimeUnit.WORKING_DAYS else 3_600.0)


async def drive(server: Server, work: Workload, count: int, budget: Budget) -> RoundResult:
    """`count` requests over `budget.concurrency` keep-alive connections, or until time is up."""
    latencies: list[float] = []
    non_201: dict[str, int] = {}
    failures: list[str] = []
    issued = 0
    deadline = time.perf_counter() + budget.round_seconds
    limits = httpx.Limits(
        max_connections=budget.concurrency, max_keepalive_connections=budget.concurrency
    )
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60.0) as client:

        async def one_connection() -> None:
            nonlocal issued
            while issued < count and time.perf_counter() < deadline:
                issued += 1
                person, body, text = work.next()
                payload = server.make_body(person, body, text)
                headers = {"Authorization": f"Bearer {person.token}"}
                t0 = time.perf_counter()
                try:
                    resp = await client.post(server.path, json=payload, headers=headers)
                    status = str(resp.status_code)
                    detail = resp.text[:200] if resp.status_code != 201 else ""
                except httpx.HTTPError as exc:
                    status, detail = "transport_error", repr(exc)[:200]
                latencies.append(time.perf_counter() - t0)
                if status != "201":
                    non_201[status] = non_201.get(status, 0) + 1
                    if len(failures) < 5:
                        failures.append(f"{status}: {detail}")

        # open the connections before the clock starts
        await asyncio.gather(*(client.get("/healthz") for _ in range(budget.concurrency)))
        cpu0 = server.cpu_seconds()
        driver0 = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(budget.concurrency)))
        seconds = time.perf_counter() - started
        driver_cpu = time.process_time() - driver0
        cpu1 = server.cpu_seconds()
    return RoundResult(
        server=server.name,
        requests=len(latencies),
        seconds=seconds,
        latencies_s=latencies,
        non_201=non_201,
        failures=failures,
        server_cpu_s=(cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
        driver_cpu_s=driver_cpu,
    )


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    name: str,
    target: str,
    path: str,
    url: str,
    tmp: Path,
    make_body: Any,
    extra: list[str],
    extra_env: dict[str, str] | None = None,
    source_dir: Path = REPO_DIR,
) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "GRIDGOV_DATABASE_URL": url,
        "GRIDGOV_SECRET_KEY": SECRET,
        "GRIDGOV_SCHEDULER": "0",
        **(extra_env or {}),
    }
    stderr_path = tmp / f"{name}.stderr"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        *extra,
    ]
    with stderr_path.open("wb") as err:
        # The source directory is the working directory: `python -m` puts it first on sys.path.
        proc = subprocess.Popen(cmd, cwd=source_dir, env=env, stdout=subprocess.DEVNULL, stderr=err)
    server = Server(name, path, proc, port, stderr_path, make_body)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {stderr_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                log(f"{name} up on port {port} (pid {proc.pid})")
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"{name} did not answer /healthz within 90 s")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=15)


# --- main -----------------------------------------------------------------------------------


def _server_stack() -> str:
    """What uvicorn's "auto" picks here: httptools/uvloop when installed, else h11/asyncio."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn {uvicorn.__version__}, 1 worker, {http}, {loop} loop, --no-access-log"


def _median_summary(rounds: list[RoundResult]) -> dict[str, Any]:
    summaries = [r.summary() for r in rounds]
    keys = [
        "requests_per_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "server_cpu_ms_per_request",
        "driver_cpu_ms_per_request",
    ]
    out: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in summaries if s[key] is not None]
        out[key] = round(float(np.median(values)), 3) if values else None
    out["requests"] = sum(s["requests"] for s in summaries)
    out["non_201"] = sum(s["non_201"] for s in summaries)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, for a smoke run")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostGIS database")
    parser.add_argument(
        "--dead-webhook",
        action="store_true",
        help="subscribe a refusing receiver to every event; the intake server's worker retries",
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another copy of the source, served as a third side `intake_before` (A/B of a change)",
    )
    parser.add_argument(
        "--one-point",
        action="store_true",
        help="every report of a worker at one point (duplicate candidates' worst case)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="connections kept busy (default 8); for diagnosis, the target is judged at 8",
    )
    args = parser.parse_args()
    budget = QUICK if args.quick else FULL
    if args.concurrency is not None:
        budget = replace(budget, concurrency=max(1, args.concurrency))
    started = time.perf_counter()
    rng = np.random.Generator(np.random.PCG64(SEED))

    with seeded_database("intake", args.postgres) as url:
        if args.dead_webhook:
            subscribe_dead_webhook(url)
        people = reporters(url, budget.workers, rng, one_point=args.one_point)
        work = Workload(people, rng)
        tmp = Path(tempfile.mkdtemp(prefix="gridgov_bench_servers_"))
        servers: list[Server] = []
        intake_env = (
            {"GRIDGOV_SCHEDULER": "1", "GRIDGOV_OUTBOX_INTERVAL_SECONDS": "1"}
            if args.dead_webhook
            else None
        )
        try:
            servers.append(
                start_server(
                    "intake",
                    "app.main:app_from_env",
                    "/v1/reports",
                    url,
                    tmp,
                    work.real_body,
                    [],
                    intake_env,
                )
            )
            if args.before is not None:
                servers.append(
                    start_server(
                        "intake_before",
                        "app.main:app_from_env",
                        "/v1/reports",
                        url,
                        tmp,
                        work.real_body,
                        [],
                        intake_env,
                        source_dir=args.before.resolve(),
                    )
                )
            servers.append(
                start_server(
                    "bare",
                    "bare_app:create_bare_app",
                    "/bare/reports",
                    url,
                    tmp,
                    work.bare_body,
                    ["--app-dir", str(BENCH_DIR)],
                )
            )
            warm: dict[str, dict[str, Any]] = {}
            for server in servers:
                log(f"warm-up {server.name}: {budget.warmup} requests")
                warm[server.name] = asyncio.run(
                    drive(server, work, budget.warmup, budget)
                ).summary()
            rows_before = count_rows(url)
            results: dict[str, list[RoundResult]] = {s.name: [] for s in servers}
            for n in range(budget.rounds):
                # A/B/A/B; with --before the three sides rotate (A/A'/B, A'/B/A, B/A/A'), so
                # each takes each place in a round once: no side always follows the bare one.
                order = servers if args.before is None else servers[n:] + servers[:n]
                for server in order:
                    result = asyncio.run(drive(server, work, budget.per_round, budget))
                    results[server.name].append(result)
                    s = result.summary()
                    log(
                        f"round {n + 1}/{budget.rounds} {server.name}: {s['requests']} req, "
                        f"{s['requests_per_s']} req/s, p50 {s['p50_ms']} ms, "
                        f"p99 {s['p99_ms']} ms, non-201 {s['non_201']}"
                    )
            rows_after = count_rows(url)
            outbox = outbox_counts(url) if args.dead_webhook else None
        finally:
            for server in servers:
                stop_server(server)
            server_logs = {
                p.stem: p.read_text(errors="replace")[-1000:]
                for p in tmp.glob("*.stderr")
                if p.stat().st_size
            }
            shutil.rmtree(tmp, ignore_errors=True)

    intake = _median_summary(results["intake"])
    bare = _median_summary(results["bare"])
    before = _median_summary(results["intake_before"]) if args.before is not None else None
    ok = {name: sum(r.summary()["ok"] for r in rs) for name, rs in results.items()}
    raw_ratio = (
        intake["requests_per_s"] / bare["requests_per_s"] if bare["requests_per_s"] else None
    )
    throughput_ratio = round(raw_ratio, 3) if raw_ratio is not None else None
    non_201_total = intake["non_201"] + bare["non_201"]
    emit(
        {
            "bench": "intake",
            "quick": args.quick,
            "dead_webhook": outbox,
            "database": "postgis" if args.postgres else "sqlite",
            "environment": environment(),
            "config": {
                "warmup_per_server": budget.warmup,
                "requests_per_round": budget.per_round,
                "rounds": budget.rounds,
                "concurrency": budget.concurrency,
                "grid_workers": len(people),
                "descriptions": len(DESCRIPTIONS),
                "report_points": "one per grid worker"
                if args.one_point
                else f"random, {POINTS_PER_REPORTER} inside each worker's grid",
                "server": _server_stack(),
            },
            "intake": intake,
            "bare": bare,
            "intake_before": before,
            "before": None
            if before is None
            else {
                "source_dir": str(args.before.resolve()),
                "throughput_ratio": round(before["requests_per_s"] / bare["requests_per_s"], 3)
                if bare["requests_per_s"]
                else None,
                "intake_over_before_requests_per_s": round(
                    intake["requests_per_s"] / before["requests_per_s"], 3
                )
                if before["requests_per_s"]
                else None,
            },
            "rounds": {name: [r.summary() for r in rs] for name, rs in results.items()},
            "warmup": warm,
            "non_201_examples": {
                name: sum((r.failures for r in rs), [])[:5] for name, rs in results.items()
            },
            "rows_written": {
                "gg_case": rows_after["gg_case"] - rows_before["gg_case"],
                "case_history": rows_after["case_history"] - rows_before["case_history"],
                "expected_gg_case": sum(ok.values()),
                "expected_case_history": sum(ok.values()) - ok["bare"],
                "duplicate_candidate": rows_after["duplicate_candidate"]
                - rows_before["duplicate_candidate"],
            },
            "server_stderr": server_logs,
            "throughput_ratio": throughput_ratio,
            "non_201_total": non_201_total,
            "target_ratio": TARGET_RATIO,
            "target_met": bool(
                raw_ratio is not None  # the unrounded ratio: 0.4975 does not pass
                and raw_ratio >= TARGET_RATIO
                and non_201_total == 0
            ),
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
