"""`/docs` renders every operation in headless Chromium, offline (issue 7, item 8).

The page is the vendored Swagger UI 5 (app/static/swagger-ui). The service runs under uvicorn on
127.0.0.1 in a thread; the browser context aborts every request that is not for that server, and
the test asserts none was even attempted. Chromium is Debian's (`apt-get install chromium`, which
.ci/run does); Playwright only drives it and never downloads a browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Response, Route, sync_playwright
from sqlalchemy.engine import Engine

from app.main import create_app
from core.settings import Settings
from tests.conftest import FakeClock
from tests.live import running

CHROMIUM = Path("/usr/bin/chromium")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def live_server(settings: Settings, engine: Engine, clock: FakeClock) -> Iterator[str]:
    with running(create_app(settings=settings, engine=engine, clock=clock)) as url:
        yield url


@dataclass
class Browsing:
    page: Page
    outside: list[str] = field(default_factory=list)  # requests for anything but the service
    problems: list[str] = field(default_factory=list)  # console errors (CSP refusals), failures


@contextmanager
def browse(base_url: str) -> Iterator[Browsing]:
    """A headless Chromium page that can reach base_url and nothing else."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium "
            "(apt-get install chromium, as .ci/run does) to run the /docs browser tests"
        )
    own = urlsplit(base_url).netloc
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 2000})
            page = context.new_page()
            seen = Browsing(page)

            def offline(route: Route) -> None:
                if urlsplit(route.request.url).netloc == own:
                    route.continue_()
                else:
                    seen.outside.append(route.request.url)
                    route.abort("internetdisconnected")

            def console(msg: ConsoleMessage) -> None:
                if msg.type == "error":
                    seen.problems.append(f"console: {msg.text}")

            def response(res: Response) -> None:
                if res.status >= 400:
                    seen.problems.append(f"HTTP {res.status}: {res.url}")

            context.route("**/*", offline)
            page.on("pageerror", lambda exc: seen.problems.append(f"page error: {exc}"))
            page.on("console", console)
            page.on("requestfailed", lambda req: seen.problems.append(f"failed: {req.url}"))
            page.on("response", response)
            yield seen
            context.close()
        finally:
            browser.close()


def _operations(base_url: str) -> int:
    spec = _get_json(f"{base_url}/openapi.json")
    assert spec["openapi"].startswith("3.1")  # what Swagger UI 4 could not read
    return sum(1 for item in spec["paths"].values() for method in item if method in HTTP_METHODS)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the page reads no table
def test_docs_renders_every_operation_offline(live_server: str, tmp_path: Path) -> None:
    operations = _operations(live_server)
    assert operations >= 10
    shot = tmp_path / "docs.png"
    with browse(live_server) as b:
        answer = b.page.goto(f"{live_server}/docs", wait_until="load")
        assert answer is not None
        csp = answer.header_value("content-security-policy") or ""
        # A locator, not wait_for_function: that one evaluates script, which the CSP may refuse.
        b.page.locator(".opblock").nth(operations - 1).wait_for(timeout=30_000)
        rendered = b.page.locator(".opblock").count()
        reports = b.page.locator('.opblock-summary-path[data-path="/v1/reports"]').count()
        title = b.page.locator(".info .title").inner_text()
        b.page.screenshot(path=str(shot))
        print(f"/docs screenshot: {shot}")  # noqa: T201 (look at it: pytest -s)
    assert "script-src 'self'" in csp  # the page runs with no inline script
    assert rendered == operations
    assert reports == 1  # POST /v1/reports
    assert "gridgov" in title
    assert b.outside == []
    assert b.problems == []
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_docs_try_it_out_calls_the_service_under_the_pages_csp(live_server: str) -> None:
    with browse(live_server) as b:
        b.page.goto(f"{live_server}/docs", wait_until="load")
        healthz = b.page.locator("#operations-ops-healthz_healthz_get")
        healthz.locator(".opblock-summary").click()
        healthz.get_by_role("button", name="Try it out").click()
        with b.page.expect_response(f"{live_server}/healthz") as called:
            healthz.get_by_role("button", name="Execute").click()
        status = called.value.status
        live = healthz.locator(".live-responses-table tbody")  # the answer, as the page shows it
        shown = live.locator(".response-col_status").first.inner_text()
        body = live.locator(".response-col_description").first.inner_text()
    assert status == 200
    assert shown.strip().startswith("200")
    assert '"status": "ok"' in body
    assert b.outside == []
    assert b.problems == []


def _get_json(url: str) -> Any:
    res = httpx.get(url, timeout=10)
    res.raise_for_status()
    return res.json()
