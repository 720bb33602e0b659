"""A real HTTP receiver the tests start on 127.0.0.1: it records each POST and answers as told."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Receipt:
    headers: dict[str, str]
    body: bytes

    @property
    def delivery(self) -> str:
        return self.headers["x-gridgov-delivery"]

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    def signed_by(self, secret: str) -> bool:
        """Verified as a receiver would: HMAC-SHA256 over "timestamp." + raw body."""
        timestamp = self.headers["x-gridgov-timestamp"]
        expected = hmac.new(
            secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest("sha256=" + expected, self.headers["x-gridgov-signature"])


@dataclass
class Receiver:
    url: str
    # Status codes to answer, in order; once used up, `default`.
    script: list[int] = field(default_factory=list)
    default: int = 200
    # When set, a request waits here (a hung receiver) until released.
    hang: threading.Event | None = None
    receipts: list[Receipt] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def accepted(self) -> list[Receipt]:
        return [r for r in self.receipts if r.headers.get("x-test-answer") == "2xx"]

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.receipts) >= count, timeout)


@contextmanager
def receiver(
    *, script: list[int] | None = None, default: int = 200, hang: bool = False
) -> Iterator[Receiver]:
    state = Receiver(url="", script=list(script or []), default=default)
    if hang:
        state.hang = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.arrived:
                status = state.script.pop(0) if state.script else state.default
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["x-test-answer"] = "2xx" if 200 <= status < 300 else str(status)
                state.receipts.append(Receipt(headers, body))
                state.arrived.notify_all()
            if state.hang is not None:
                state.hang.wait(60)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if state.hang is not None:
            state.hang.set()
        server.shutdown()
        server.server_close()


def refused_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
