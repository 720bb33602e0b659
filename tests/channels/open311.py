"""What the Open311 tests share: the spec's field lists, a key, a POST, XML read back safely."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from channels.open311 import keys
from core.clock import utcnow
from core.db import session_scope

GRID = "440604011001001"
BASE = "/open311/v2"

# GeoReport v2 field lists, in the spec's order (wiki.open311.org/GeoReport_v2, Service
# Discovery): what each answer's items carry.
SERVICE_FIELDS = [
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
]
REQUEST_FIELDS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]
# POST's answer: the spec's service_request_id, service_notice and account_id, and the token
# the task asks for beside the id.
POST_FIELDS = ["service_request_id", "token", "service_notice", "account_id"]
TOKEN_FIELDS = ["service_request_id", "token"]
DISCOVERY_FIELDS = ["changeset", "contact", "key_service", "endpoints"]
ENDPOINT_FIELDS = ["specification", "url", "changeset", "type", "formats"]
ERROR_FIELDS = ["code", "description"]


def issue_key(engine: Engine, name: str = "civic-app") -> str:
    with session_scope(engine) as session:
        return keys.issue(session, name=name, now=utcnow()).api_key


def form(point: Callable[[str], tuple[float, float]], *, grid: str = GRID, **over: Any) -> dict:
    """A valid POST inside `grid` (WGS-84); `over` replaces or adds fields (None drops one)."""
    lng, lat = point(grid)
    body: dict[str, Any] = {
        "service_code": "0601",
        "lat": f"{lat:.7f}",
        "long": f"{lng:.7f}",
        "description": "路口垃圾桶满溢，垃圾散落一地",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def post(client: TestClient, fmt: str, body: dict[str, Any], **kw: Any) -> Any:
    return client.post(f"{BASE}/requests.{fmt}", data=body, **kw)


def xml(content: bytes) -> Element:
    """The answer parsed by defusedxml (no entity expansion), checking the declaration."""
    assert content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>'), content[:60]
    root: Element = SafeET.fromstring(content)
    return root


def tags(element: Element) -> list[str]:
    return [child.tag for child in element]


def errors_of(res: Any, fmt: str) -> list[dict[str, Any]]:
    """The spec's error list, in either format, as dicts (XML codes read as numbers)."""
    if fmt == "json":
        assert res.headers["content-type"].startswith("application/json")
        body: list[dict[str, Any]] = res.json()
        assert all(list(item) == ERROR_FIELDS for item in body)
        return body
    assert res.headers["content-type"].startswith("text/xml")
    root = xml(res.content)
    assert root.tag == "errors"
    out = []
    for error in root:
        assert error.tag == "error"
        assert tags(error) == ERROR_FIELDS
        out.append(
            {"code": int(error.findtext("code") or 0), "description": error.findtext("description")}
        )
    return out
