"""The console in Debian's Chromium (issue 12): sign in, a report appearing live in the queue,
opening, registering and dispatching it, the unit accepting and resolving it, the map, warnings,
SLA board and statistics pages rendering with data, a stored `<script>` staying text, a reload
keeping the session and signing out ending it. Offline: every request that is not for the
service is aborted and counted, and a console error (a CSP refusal among them) fails the test.

Screenshots of every page at 1920×1080 and 1366×768 go to tests/console/screenshots/ (or
$GRIDGOV_SCREENSHOTS): look at them.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from openpyxl import load_workbook
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright
from sqlalchemy.engine import Engine

from app.main import create_app
from app.runtime import build_runtime
from core.db import session_scope
from core.settings import Settings
from dispatch.tasks import run_sweep
from surveillance import alerts
from surveillance.models import WarningKind
from tests.conftest import ROOT, Api, FakeClock, new_client_id
from tests.live import running

CHROMIUM = Path("/usr/bin/chromium")
sys.path.insert(0, str(ROOT / "bench"))
console_bench = importlib.import_module("console")
SHOTS = Path(os.environ.get("GRIDGOV_SCREENSHOTS", Path(__file__).parent / "screenshots"))
SIZES = {"1920x1080": (1920, 1080), "1366x768": (1366, 768)}
PASSWORD = "gridgov-demo"
G1 = "440604011001001"
G3 = "440604012001001"  # another town
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">路灯坏咗'
Point = Callable[[str], tuple[float, float]]

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def server(settings: Settings, engine: Engine, clock: FakeClock) -> Iterator[str]:
    settings = settings.model_copy(update={"stream_poll_seconds": 0.2})
    with running(create_app(settings=settings, engine=engine, clock=clock)) as url:
        yield url


@dataclass
class Tab:
    page: Page
    outside: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # API paths the page called


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def tab(browser: Browser, base: str, size: str = "1920x1080") -> Iterator[Tab]:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    seen = Tab(page)
    own = urlsplit(base).netloc

    def offline(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            seen.outside.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", offline)
    page.on("pageerror", lambda exc: seen.problems.append(f"page error: {exc} {exc.stack}"))

    def console(msg: ConsoleMessage) -> None:
        # Not signed in yet: the page asks who is signed in and is told 401 (expected).
        expected = "status of 401" in msg.text and msg.location.get("url", "").endswith(
            "/v1/auth/session"
        )
        if msg.type == "error" and not expected:
            seen.problems.append(f"console: {msg.text} ({msg.location.get('url')})")

    page.on("console", console)
    page.on(
        "request",
        lambda req: (
            seen.asked.append(urlsplit(req.url).path)
            if urlsplit(req.url).path.startswith("/v1/")
            else None
        ),
    )
    try:
        yield seen
    finally:
        context.close()


def sign_in(t: Tab, base: str, username: str) -> None:
    t.page.goto(f"{base}/console/")
    form = t.page.get_by_test_id("login-form")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    expect(t.page.get_by_test_id("who")).to_be_visible()


def shape_of(request: str) -> str:
    """`GET /v1/cases/17?x=1` → `GET /v1/cases/{id}`: an endpoint, whatever the ids and query."""
    method, _, path = request.partition(" ")
    path = re.sub(r"/\d+(?=/|$)", "/{id}", urlsplit(path).path)
    return f"{method} {path.replace('/{case}', '/{id}')}"


def resize(t: Tab, size: str) -> None:
    width, height = SIZES[size]
    t.page.set_viewport_size({"width": width, "height": height})


def shoot(t: Tab, name: str, size: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    t.page.screenshot(path=str(SHOTS / f"{name}-{size}.png"))


def report(base: str, api: Api, point: Point, text: str, grid: str = G1) -> dict[str, Any]:
    lng, lat = point(grid)
    res = httpx.post(
        f"{base}/v1/reports",
        json={"client_id": new_client_id(), "lat": lat, "lng": lng, "description": text},
        headers=api.headers(f"gw{grid}"),
    )
    assert res.status_code == 201, res.text
    return dict(res.json())


def act(t: Tab, action: str, fields: dict[str, str | Path] | None = None) -> None:
    t.page.get_by_test_id(f"action-{action}").click()
    form = t.page.get_by_test_id(f"form-{action}")
    for name, value in (fields or {}).items():
        control = form.locator(f"[name={name}]")
        if isinstance(value, Path):
            control.set_input_files(str(value))
        elif control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    form.get_by_test_id("action-submit").click()
    expect(t.page.get_by_test_id(f"form-{action}")).to_have_count(0)


def finding(cases: list[dict[str, Any]], lat: float, lng: float) -> alerts.Finding:
    return alerts.Finding(
        kind=WarningKind.CLUSTER,
        category_code=cases[0]["category_code"],
        subcategory_code=None,
        area_code=G3,
        center_lat=lat,
        center_lng=lng,
        radius_m=300.0,
        window_start=datetime(2026, 11, 23, 16, 0, tzinfo=UTC),
        window_end=datetime(2026, 11, 24, 16, 0, tzinfo=UTC),
        observed=len(cases),
        expected=0.4,
        p_value=0.002,
        recurrence_days=1000.0,
        case_ids=tuple(c["id"] for c in cases),
    )


def test_the_whole_loop_in_the_browser(
    server: str,
    browser: Browser,
    api: Api,
    demo_points: Point,
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
) -> None:
    # Some data for the map, the board and the statistics: three reports yesterday, now red
    # cards after the sweep, and the warning a scan would raise over them.
    api.clock.now = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    old = [report(server, api, demo_points, "垃圾桶满了没人清理", grid=G3) for _ in range(3)]
    api.clock.now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 local the next day
    runtime = build_runtime(settings, engine, clock=lambda: api.clock.now)
    swept = run_sweep(engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy)
    assert sum(swept.values()) > 0
    lng, lat = demo_points(G3)
    with session_scope(engine) as session:
        alerts.record(session, [finding(old, lat, lng)], now=api.clock.now)
    with tab(browser, server) as centre:
        sign_in(centre, server, "dispatcher")
        rows = centre.page.get_by_test_id("queue-row")
        expect(rows).to_have_count(3)
        expect(rows.locator(".badge.red")).to_have_count(3)
        expect(centre.page).to_have_title(re.compile(r"^\(3\) 待办"))
        expect(centre.page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")

        started = time.monotonic()
        case = report(server, api, demo_points, HOSTILE)
        row = centre.page.locator(f"[data-testid=queue-row][data-case-id='{case['id']}']")
        expect(row).to_be_visible(timeout=2_000)  # live, no reload
        live_seconds = time.monotonic() - started
        assert live_seconds < 2.0
        expect(centre.page).to_have_title(re.compile(r"^\(4\) 待办"))
        expect(row.locator("td.desc")).to_contain_text("<script>window.__pwned=1</script>")
        for size in SIZES:
            resize(centre, size)
            shoot(centre, "queue", size)

        row.locator("td.desc").click()
        detail = centre.page.get_by_test_id("case-detail")
        expect(detail.get_by_test_id("case-description")).to_have_text(HOSTILE)
        act(centre, "register")
        expect(detail.locator(".status")).to_have_text("已立案")
        act(centre, "dispatch")
        expect(detail.locator(".status")).to_have_text("已派遣")
        expect(centre.page.get_by_test_id("timeline").locator("li")).to_have_count(3)
        expect(centre.page.get_by_test_id("case-map").locator("canvas")).not_to_have_count(0)
        for size in SIZES:
            resize(centre, size)
            shoot(centre, "case", size)
        assert centre.page.evaluate("() => window.__pwned") is None

        centre.page.reload()  # the session survives a reload
        expect(centre.page.get_by_test_id("case-detail").locator(".status")).to_have_text("已派遣")

        unit = f"dept-{case['department_code'].lower()}"
        with tab(browser, server, "1366x768") as department:
            sign_in(department, server, unit)
            mine = department.page.locator(f"[data-testid=queue-row][data-case-id='{case['id']}']")
            expect(mine).to_be_visible()
            for size in SIZES:
                resize(department, size)
                shoot(department, "department", size)
            mine.locator("td.desc").click()
            act(department, "accept")
            expect(department.page.locator(".status")).to_have_text("处置中")
            photo = tmp_path / "after.png"
            Image.new("RGB", (64, 48), (40, 120, 200)).save(photo)
            act(department, "resolve", {"note": "已更换灯泡，恢复照明", "attachment_ids": photo})
            expect(department.page.locator(".status")).to_have_text("已反馈")
            thumb = department.page.locator(".photos img")
            expect(thumb).to_have_count(1)
            for _ in range(50):  # served to the unit's session (cookie), decoded
                if thumb.evaluate("img => img.complete && img.naturalWidth") > 0:
                    break
                time.sleep(0.1)
            assert thumb.evaluate("img => img.naturalWidth") > 0
            for size in SIZES:
                resize(department, size)
                shoot(department, "department-case", size)
            department.page.goto(f"{server}/console/#/stats")  # its own row, no area table
            expect(
                department.page.get_by_test_id("stats-departments").locator("tbody tr")
            ).to_have_count(1)
            expect(department.page.get_by_test_id("stats-areas")).to_have_count(0)
            assert department.outside == []
            assert department.problems == []
        # the rest of the loop through the API: the check on site, closure, 回访
        for who, action, body in (
            (f"gw{G1}", "verify", {"passed": True}),
            ("dispatcher", "close", {}),
            ("dispatcher", "visit", {"satisfaction": "satisfied"}),
        ):
            res = httpx.post(
                f"{server}/v1/cases/{case['id']}/{action}", json=body, headers=api.headers(who)
            )
            assert res.status_code == 200, res.text
        # the centre's open case page follows the unit's actions live
        expect(centre.page.get_by_test_id("case-detail").locator(".status")).to_have_text(
            "已结案", timeout=3_000
        )

        for page, ready in (
            (
                "map",
                lambda p: expect(p.get_by_test_id("grid-map")).to_have_attribute(
                    "data-drawn", "139"
                ),
            ),
            ("warnings", lambda p: expect(p.get_by_test_id("warning-card")).to_have_count(1)),
            (
                "sla",
                lambda p: expect(p.get_by_test_id("sla-overdue").locator("tbody tr")).to_have_count(
                    3
                ),
            ),
            (
                "stats",
                lambda p: expect(p.get_by_test_id("ranking-chart").locator("rect")).to_have_count(
                    2
                ),
            ),
        ):
            centre.page.goto(f"{server}/console/#/{page}")
            ready(centre.page)
            for size in SIZES:
                resize(centre, size)
                shoot(centre, page, size)
        expect(centre.page.get_by_test_id("ranking-chart").first).to_be_visible()
        with centre.page.expect_download() as download:
            centre.page.get_by_test_id("stats-departments").get_by_test_id("download-xlsx").click()
        assert download.value.suggested_filename.endswith(".xlsx")
        workbook = io.BytesIO(Path(download.value.path()).read_bytes())
        sheet = load_workbook(workbook, read_only=True).worksheets[0]
        header, *rows = list(sheet.iter_rows(values_only=True))
        assert header[:2] == ("department_code", "department_name")
        assert any(r[0] == case["department_code"] and r[header.index("closed")] == 1 for r in rows)
        centre.page.goto(f"{server}/console/#/warnings")
        centre.page.locator("input[name=heat]").check()
        expect(centre.page.get_by_test_id("heat-summary")).to_contain_text("热力：")
        shoot(centre, "warnings-heat", "1920x1080")
        centre.page.goto(f"{server}/console/#/warnings")
        card = centre.page.get_by_test_id("warning-card")
        expect(card).to_contain_text("待处理")
        card.locator("input[name=note]").fill("已通知镇街环卫清理")
        card.get_by_test_id("warning-acknowledge").click()
        expect(centre.page.get_by_test_id("warning-card")).to_contain_text("已确认")
        expect(centre.page.get_by_test_id("warning-card")).to_contain_text("已通知镇街环卫清理")
        centre.page.goto(f"{server}/console/#/sla")
        expect(centre.page.get_by_test_id("sla-overdue").locator("tbody tr")).to_have_count(3)

        centre.page.get_by_test_id("sign-out").click()
        expect(centre.page.get_by_test_id("login-form")).to_be_visible()
        centre.page.reload()
        expect(centre.page.get_by_test_id("login-form")).to_be_visible()
        shoot(centre, "sign-in", "1366x768")
        assert centre.outside == []
        assert centre.problems == []
        read = {shape_of(a) for a in centre.asked + department.asked if a.startswith("GET ")}
    # bench/console.py times what the pages read on load: it must know every endpoint they read.
    benched = {shape_of(f"GET {p}") for paths in console_bench.PAGES.values() for p in paths}
    assert read - benched - {"GET /v1/events/stream", "GET /v1/attachments/{id}"} == set()
