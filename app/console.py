"""The command-centre console at /console/: static files in the package, a strict CSP.

The page is `app/console/index.html` with its scripts and styles beside it and the browser
libraries vendored under `app/console/vendor/` (each with its licence); nothing is loaded from
another origin, unless an intranet tile server is configured (`GRIDGOV_CONSOLE_TILE_URL`),
whose origin the policy then allows for images. The page talks to the same `/v1/...` API as
everyone else, signed in by the session cookie (`/v1/auth/session`).
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from core.settings import Settings

CONSOLE_DIR = Path(__file__).parent / "console"
TILE_PLACEHOLDER = 'data-tile-url=""'
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def tile_origin(url: str) -> str | None:
    """The scheme and host of a tile URL template, for the CSP (None: none or not http[s])."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    tiles = tile_origin(settings.console_tile_url)
    images = "'self' data: blob:" + (f" {tiles}" if tiles else "")
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@cache
def _page_template() -> str:
    return (CONSOLE_DIR / "index.html").read_text(encoding="utf-8")


def page(settings: Settings) -> str:
    """index.html with the tile URL (escaped) in `<body data-tile-url>`."""
    url = settings.console_tile_url if tile_origin(settings.console_tile_url) else ""
    return _page_template().replace(
        TILE_PLACEHOLDER, f'data-tile-url="{html.escape(url, quote=True)}"', 1
    )


class _Files(StaticFiles):
    """The console's files, with the security headers and no caching of stale scripts."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                headers.append((b"cache-control", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    csp = content_security_policy(settings)

    @app.get("/console", include_in_schema=False)
    def console_root() -> Response:
        return RedirectResponse("/console/", status_code=308)

    @app.get("/console/", include_in_schema=False)
    def console_page() -> Response:
        return HTMLResponse(
            page(settings),
            headers={
                "Content-Security-Policy": csp,
                "Cache-Control": "no-store",
                **SECURITY_HEADERS,
            },
        )

    app.mount("/console", _Files(directory=CONSOLE_DIR, check_dir=False), name="console")
