"""Attachments on cases, through HTTP on SQLite and PostGIS: `attachment_ids` on reports (one
and batch), `resolve` and `verify`; who may fetch a photo; refusals change nothing; the audit
chain covers the photo ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlmodel import Session

from app.cli import main
from media.models import AttachmentLink
from tests.conftest import Api, OwnApp
from tests.events.reports import counts, report_body
from tests.media.images import encoded, uploaded

GRID = "440604011001001"
OTHER_GRID = "440604011001002"
WORKER = f"gw{GRID}"
OTHER_WORKER = f"gw{OTHER_GRID}"
Point = Callable[[str], tuple[float, float]]


def _links(api: Api) -> int:
    with Session(api.engine) as s:
        return int(s.execute(select(func.count()).select_from(AttachmentLink)).scalar_one())


def _report(api: Api, point: Point, ids: list[str], **over: Any) -> dict[str, Any]:
    res = api.post(
        WORKER,
        "/v1/reports",
        report_body(point, description="井盖丢失", attachment_ids=ids, **over),
    )
    assert res.status_code == 201, res.text
    case: dict[str, Any] = res.json()
    return case


def _walk(api: Api, case_id: int, steps: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for user, action, params in steps:
        api.clock.advance(minutes=5)
        res = api.post(user, f"/v1/cases/{case_id}/{action}", params)
        assert res.status_code == 200, (action, res.text)
        out = res.json()
    return out


def test_report_links_its_photos_and_the_case_lists_them(api: Api, demo_points: Point) -> None:
    photos = [
        uploaded(api, WORKER, encoded("JPEG", (80, 60))),
        uploaded(api, WORKER, encoded("PNG")),
    ]
    case = _report(api, demo_points, photos)
    assert sorted((a["id"], a["purpose"]) for a in case["attachments"]) == sorted(
        (p, "report") for p in photos
    )
    first = next(a for a in case["attachments"] if a["id"] == photos[0])
    assert (first["content_type"], first["width"], first["height"]) == ("image/jpeg", 80, 60)
    shown = api.get("dispatcher", f"/v1/cases/{case['id']}").json()
    assert sorted(a["id"] for a in shown["attachments"]) == sorted(photos)
    listed = api.get("dispatcher", "/v1/cases").json()["items"]
    assert sorted(
        a["id"] for a in next(c for c in listed if c["id"] == case["id"])["attachments"]
    ) == sorted(photos)


def test_resend_of_a_report_with_the_same_photos_is_the_same_case(
    api: Api, demo_points: Point
) -> None:
    photo = uploaded(api, WORKER)
    body = report_body(demo_points, attachment_ids=[photo])
    first = api.post(WORKER, "/v1/reports", body)
    again = api.post(WORKER, "/v1/reports", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert [a["id"] for a in again.json()["attachments"]] == [photo]
    assert _links(api) == 1


@pytest.mark.parametrize("whose", ["unknown", "another worker's", "a mix"])
def test_report_with_unknown_or_anothers_photo_is_422_and_writes_nothing(
    api: Api, demo_points: Point, whose: str
) -> None:
    mine = uploaded(api, WORKER)
    theirs = uploaded(api, OTHER_WORKER)
    ids = {"unknown": ["no-such-photo"], "another worker's": [theirs], "a mix": [mine, theirs]}[
        whose
    ]
    before = counts(api)
    res = api.post(WORKER, "/v1/reports", report_body(demo_points, attachment_ids=ids))
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "unknown_attachment"
    assert mine not in res.json()["detail"]
    assert counts(api) == before
    assert _links(api) == 0


def test_batch_links_each_reports_photos_and_refuses_only_the_bad_item(
    api: Api, demo_points: Point
) -> None:
    good = uploaded(api, WORKER)
    theirs = uploaded(api, OTHER_WORKER)
    batch = {
        "reports": [
            report_body(demo_points, attachment_ids=[good]),
            report_body(demo_points, attachment_ids=[theirs]),
        ]
    }
    res = api.post(WORKER, "/v1/reports/batch", batch)
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    assert [r["status"] for r in results] == [201, 422]
    assert results[1]["error"]["error"] == "unknown_attachment"
    assert [a["id"] for a in results[0]["case"]["attachments"]] == [good]
    assert _links(api) == 1


def test_photo_is_seen_by_its_uploader_and_by_those_who_see_its_case(
    api: Api, demo_points: Point
) -> None:
    photo = uploaded(api, WORKER)
    path = f"/v1/attachments/{photo}"
    assert api.get(WORKER, path).status_code == 200
    for outsider in (OTHER_WORKER, "dispatcher", "dept-cgj"):  # not used by any case yet
        res = api.get(outsider, path)
        assert res.status_code == 404, outsider
        assert res.json()["error"] == "attachment_not_found"
    case = _report(api, demo_points, [photo])
    assert api.get("dispatcher", path).status_code == 200
    assert api.get("admin", path + "?size=thumb").status_code == 200
    assert api.get(OTHER_WORKER, path).status_code == 404
    assert api.get("dept-cgj", path).status_code == 404  # not dispatched to it yet
    _walk(api, case["id"], [("dispatcher", "register", {}), ("dispatcher", "dispatch", {})])
    assert api.get("dept-cgj", path).status_code == 200
    assert api.get("dept-jtj", path).status_code == 404
    assert api.get(OTHER_WORKER, path).status_code == 404
    # Unknown ids look the same as hidden ones.
    assert (
        api.get(OTHER_WORKER, "/v1/attachments/nope").json()
        == api.get(OTHER_WORKER, "/v1/attachments/nope").json()
    )


def test_resolve_and_verify_link_their_photos_in_the_history(api: Api, demo_points: Point) -> None:
    case = _report(api, demo_points, [])
    cid = case["id"]
    _walk(
        api,
        cid,
        [
            ("dispatcher", "register", {}),
            ("dispatcher", "dispatch", {}),
            ("dept-cgj", "accept", {}),
        ],
    )
    after = uploaded(api, "dept-cgj", encoded("JPEG", (90, 90)))
    resolved = _walk(
        api, cid, [("dept-cgj", "resolve", {"note": "已补装井盖", "attachment_ids": [after]})]
    )
    assert resolved["history"][-1]["data"]["attachment_ids"] == [after]
    check = uploaded(api, WORKER, encoded("WEBP", (70, 70)))
    verified = _walk(api, cid, [(WORKER, "verify", {"passed": True, "attachment_ids": [check]})])
    assert verified["status"] == "verified"
    assert verified["history"][-1]["data"]["attachment_ids"] == [check]
    assert [(a["id"], a["purpose"]) for a in verified["attachments"]] == [
        (after, "resolve"),
        (check, "verify"),
    ]
    # The worker of the grid sees the unit's after-photo through the case.
    assert api.get(WORKER, f"/v1/attachments/{after}").status_code == 200


@pytest.mark.parametrize("whose", ["unknown", "someone else's"])
def test_resolve_with_unknown_or_anothers_photo_is_422_and_changes_nothing(
    api: Api, demo_points: Point, whose: str
) -> None:
    case = _report(api, demo_points, [])
    cid = case["id"]
    _walk(
        api,
        cid,
        [
            ("dispatcher", "register", {}),
            ("dispatcher", "dispatch", {}),
            ("dept-cgj", "accept", {}),
        ],
    )
    photo = "nope" if whose == "unknown" else uploaded(api, WORKER)
    before = api.get("dispatcher", f"/v1/cases/{cid}").json()
    res = api.post(
        "dept-cgj", f"/v1/cases/{cid}/resolve", {"note": "已处理", "attachment_ids": [photo]}
    )
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "unknown_attachment"
    after = api.get("dispatcher", f"/v1/cases/{cid}").json()
    assert (after["status"], after["version"], len(after["history"])) == (
        "accepted",
        before["version"],
        len(before["history"]),
    )
    assert _links(api) == 0


def test_photos_on_an_action_that_takes_none_are_422(api: Api, demo_points: Point) -> None:
    case = _report(api, demo_points, [])
    photo = uploaded(api, "dispatcher")
    res = api.post("dispatcher", f"/v1/cases/{case['id']}/register", {"attachment_ids": [photo]})
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "attachments_not_accepted"
    assert api.get("dispatcher", f"/v1/cases/{case['id']}").json()["status"] == "reported"
    assert _links(api) == 0


def test_audit_verify_passes_with_photo_ids_in_the_history(
    own_app: OwnApp, demo_points: Point
) -> None:
    api = own_app.api
    case = _report(api, demo_points, [uploaded(api, WORKER)])
    cid = case["id"]
    _walk(
        api,
        cid,
        [
            ("dispatcher", "register", {}),
            ("dispatcher", "dispatch", {}),
            ("dept-cgj", "accept", {}),
        ],
    )
    photo = uploaded(api, "dept-cgj")
    _walk(api, cid, [("dept-cgj", "resolve", {"note": "已处理", "attachment_ids": [photo]})])
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_report_photo_ids_are_part_of_the_report_fingerprint(api: Api, demo_points: Point) -> None:
    """The same client_id with other photos is another report: `client_id_conflict`."""
    body = report_body(demo_points, attachment_ids=[uploaded(api, WORKER)])
    assert api.post(WORKER, "/v1/reports", body).status_code == 201
    other = {**body, "attachment_ids": [uploaded(api, WORKER, encoded("PNG"))]}
    res = api.post(WORKER, "/v1/reports", other)
    assert res.status_code == 409, res.text
    assert res.json()["error"] == "client_id_conflict"
