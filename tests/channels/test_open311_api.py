"""Open311 GeoReport v2 through HTTP, both formats, both databases: every answer's elements
against the spec's field lists, a request filed into the dispatcher's queue, the spec's errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from channels.open311.models import Open311Request
from dispatch.models import Case
from taxonomy.catalogue import load_default_catalogue
from tests.channels.open311 import (
    BASE,
    DISCOVERY_FIELDS,
    ENDPOINT_FIELDS,
    GRID,
    POST_FIELDS,
    REQUEST_FIELDS,
    SERVICE_FIELDS,
    TOKEN_FIELDS,
    errors_of,
    form,
    issue_key,
    post,
    tags,
    xml,
)
from tests.conftest import Api, new_client_id

Point = Callable[[str], tuple[float, float]]
FORMATS = ["xml", "json"]


def _counts(api: Api) -> tuple[int, int]:
    with Session(api.engine) as s:
        return (
            s.execute(select(func.count()).select_from(Case)).scalar_one(),
            s.execute(select(func.count()).select_from(Open311Request)).scalar_one(),
        )


def _requests(res: Any, fmt: str) -> list[dict[str, Any]]:
    """A service_requests answer as dicts, checking each item's fields are the spec's list."""
    assert res.status_code in (200, 201), res.text
    if fmt == "json":
        items: list[dict[str, Any]] = res.json()
        return items
    root = xml(res.content)
    assert root.tag == "service_requests"
    out = []
    for request in root:
        assert request.tag == "request"
        out.append({child.tag: child.text for child in request})
    return out


def _file(api: Api, demo_points: Point, key: str, fmt: str = "json", **over: Any) -> dict:
    res = post(api.client, fmt, form(demo_points, api_key=key, **over))
    assert res.status_code == 201, res.text
    return _requests(res, fmt)[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery_names_the_endpoint_and_both_formats(api: Api, fmt: str) -> None:
    res = api.client.get(f"{BASE}/discovery.{fmt}")
    assert res.status_code == 200
    if fmt == "json":
        doc = res.json()
        assert list(doc) == DISCOVERY_FIELDS
        (endpoint,) = doc["endpoints"]
        assert list(endpoint) == ENDPOINT_FIELDS
        formats = endpoint["formats"]
        url = endpoint["url"]
    else:
        root = xml(res.content)
        assert root.tag == "discovery"
        assert tags(root) == DISCOVERY_FIELDS
        (endpoint_el,) = root.find("endpoints") or []
        assert endpoint_el.tag == "endpoint"
        assert tags(endpoint_el) == ENDPOINT_FIELDS
        assert tags(endpoint_el.find("formats")) == ["format", "format"]  # type: ignore[arg-type]
        formats = [f.text for f in endpoint_el.iter("format")]
        url = endpoint_el.findtext("url")
        endpoint = {"specification": endpoint_el.findtext("specification")}
    assert formats == ["text/xml", "application/json"]
    assert url == "http://testserver/open311/v2"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"


@pytest.mark.parametrize("fmt", FORMATS)
def test_services_are_the_catalogue_subcategories(api: Api, fmt: str) -> None:
    res = api.client.get(f"{BASE}/services.{fmt}")
    assert res.status_code == 200
    if fmt == "json":
        items = res.json()
        assert all(list(item) == SERVICE_FIELDS for item in items)
    else:
        root = xml(res.content)
        assert root.tag == "services"
        assert {s.tag for s in root} == {"service"}
        assert all(tags(s) == SERVICE_FIELDS for s in root)
        items = [{c.tag: c.text for c in s} for s in root]
    catalogue = load_default_catalogue()
    expected = [(cat.name, sub.code, sub.name) for cat, sub in catalogue.iter_subcategories()]
    assert [(s["group"], s["service_code"], s["service_name"]) for s in items] == expected
    first = items[0]
    assert first["metadata"] in (False, "false")
    assert first["type"] == "realtime"
    garbage = next(s for s in items if s["service_code"] == "0601")
    assert garbage["description"] == (
        "市容环境 · 暴露垃圾：由区城市管理和综合执法局处置，派遣后时限4工作小时"
    )
    assert "垃圾" in garbage["keywords"].split(", ")


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_definition_has_no_attributes_and_an_unknown_code_is_404(
    api: Api, fmt: str
) -> None:
    res = api.client.get(f"{BASE}/services/0601.{fmt}")
    assert res.status_code == 200
    if fmt == "json":
        assert res.json() == {"service_code": "0601", "attributes": []}
    else:
        root = xml(res.content)
        assert root.tag == "service_definition"
        assert tags(root) == ["service_code", "attributes"]
        assert root.findtext("service_code") == "0601"
        assert tags(root.find("attributes")) == []  # type: ignore[arg-type]
    missing = api.client.get(f"{BASE}/services/9999.{fmt}")
    assert missing.status_code == 404
    assert [e["code"] for e in errors_of(missing, fmt)] == [404]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_posted_request_reaches_the_dispatchers_queue_with_category_grid_and_channel(
    api: Api, demo_points: Point, fmt: str
) -> None:
    key = issue_key(api.engine)
    body = form(
        demo_points,
        api_key=key,
        address_string="石湾镇街道 和平路 12 号",
        media_url="https://img.example.org/p/1.jpg",
        phone="13812345678",
        email="someone@example.org",
        first_name="三",
        last_name="张",
        account_id="u-42",
        device_id="dev-9",
        jurisdiction_id="chancheng.gov.cn",
    )
    res = post(api.client, fmt, body)
    assert res.status_code == 201, res.text
    if fmt == "json":
        assert all(list(item) == POST_FIELDS for item in res.json())
    else:
        root = xml(res.content)
        assert root.tag == "service_requests"
        assert [r.tag for r in root] == ["request"]
        assert tags(root[0]) == POST_FIELDS
    (answer,) = _requests(res, fmt)
    assert answer["account_id"] == "u-42"
    assert answer["service_request_id"].isdigit()
    assert "待指挥中心受理" in answer["service_notice"]

    queue = api.get("dispatcher", "/v1/cases", params={"channel": "open311"}).json()["items"]
    (case,) = [c for c in queue if c["case_no"] == answer["service_request_id"]]
    assert case["channel"] == "open311"
    assert case["status"] == "reported"
    assert (case["category_code"], case["subcategory_code"]) == ("06", "0601")
    assert case["grid_code"] == GRID
    # The command centre reads the notes (phone in clear, read logged); names and email are
    # not kept anywhere.
    assert case["description"].splitlines() == [
        "路口垃圾桶满溢，垃圾散落一地",
        "地址：石湾镇街道 和平路 12 号",
        "图片：https://img.example.org/p/1.jpg",
        "回访电话：13812345678",
    ]
    with Session(api.engine) as s:
        stored = s.execute(select(Case.description)).scalars().all()
        row = s.execute(select(Open311Request)).scalar_one()
    assert not any("someone@example.org" in d or "张" in d for d in stored)
    assert (row.account_id, row.device_id) == ("u-42", "dev-9")

    token = answer["token"]
    for out in FORMATS:
        resolved = api.client.get(f"{BASE}/tokens/{token}.{out}")
        assert resolved.status_code == 200
        if out == "xml":
            assert tags(xml(resolved.content)[0]) == TOKEN_FIELDS
        assert _requests(resolved, out) == [
            {"service_request_id": answer["service_request_id"], "token": token}
        ]
    unknown = api.client.get(f"{BASE}/tokens/nope.{fmt}")
    assert unknown.status_code == 404
    assert [e["code"] for e in errors_of(unknown, fmt)] == [404]


def test_the_same_post_again_that_day_is_the_same_request(api: Api, demo_points: Point) -> None:
    key = issue_key(api.engine)
    first = _file(api, demo_points, key, account_id="u-1")
    again = post(api.client, "json", form(demo_points, api_key=key, account_id="u-1"))
    assert again.status_code == 200
    assert again.json()[0]["service_request_id"] == first["service_request_id"]
    assert again.json()[0]["token"] == first["token"]
    other = _file(api, demo_points, key, account_id="u-1", description="另一处垃圾堆积")
    assert other["service_request_id"] != first["service_request_id"]
    api.clock.advance(days=1)
    next_day = _file(api, demo_points, key, account_id="u-1")
    assert next_day["service_request_id"] != first["service_request_id"]
    assert _counts(api)[1] == 3


_BAD_POSTS: list[tuple[str, dict[str, Any], int, list[str]]] = [
    ("no key", {"api_key": None}, 403, ["open311_api_key_missing"]),
    ("wrong key", {"api_key": "not-a-key"}, 403, ["open311_api_key_invalid"]),
    ("unknown service", {"service_code": "9999"}, 404, ["open311_unknown_service"]),
    ("no service", {"service_code": None}, 400, ["open311_service_code_required"]),
    ("no location", {"lat": None, "long": None}, 400, ["open311_location_required"]),
    ("address only", {"lat": None, "address_string": "和平路"}, 400, ["open311_location_required"]),
    ("bad latitude", {"lat": "north"}, 400, ["invalid_coordinates"]),
    ("outside", {"lat": "39.9087", "long": "116.3975"}, 400, ["outside_district"]),
    (
        "two defects",
        {"service_code": None, "lat": None},
        400,
        ["open311_service_code_required", "open311_location_required"],
    ),
    ("unknown field", {"colour": "red"}, 400, ["open311_unknown_parameter"]),
    ("foreign phone", {"phone": "+1 555 0100"}, 400, ["open311_invalid_field"]),
    ("bad media", {"media_url": "javascript:alert(1)"}, 400, ["open311_invalid_field"]),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("over", "status", "codes"),
    [case[1:] for case in _BAD_POSTS],
    ids=[case[0] for case in _BAD_POSTS],
)
def test_refused_posts_answer_the_spec_error_list_and_store_nothing(
    api: Api, demo_points: Point, fmt: str, over: dict[str, Any], status: int, codes: list[str]
) -> None:
    key = issue_key(api.engine)
    before = _counts(api)
    res = post(api.client, fmt, form(demo_points, **{"api_key": key, **over}))
    assert res.status_code == status, res.text
    errors = errors_of(res, fmt)
    assert len(errors) == len(codes)
    assert res.headers["X-Gridgov-Error"] == ",".join(codes)
    assert all(e["code"] in (400, 403, 404) and e["description"] for e in errors)
    assert _counts(api) == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_revoked_key_and_a_non_form_body_are_refused(
    api: Api, demo_points: Point, fmt: str
) -> None:
    from channels.open311 import keys
    from core.db import session_scope

    key = issue_key(api.engine)
    with session_scope(api.engine) as session:
        (row,) = keys.all_keys(session)
        assert row.id is not None
        keys.revoke(session, row.id, now=api.clock.now)
    res = post(api.client, fmt, form(demo_points, api_key=key))
    assert res.status_code == 403
    assert errors_of(res, fmt)[0]["code"] == 403
    assert res.headers["X-Gridgov-Error"] == "open311_api_key_invalid"
    fresh = issue_key(api.engine, "other-app")
    as_json = api.client.post(f"{BASE}/requests.{fmt}", json=form(demo_points, api_key=fresh))
    assert as_json.status_code == 400
    assert errors_of(as_json, fmt)[0]["code"] == 400
    assert as_json.headers["X-Gridgov-Error"] == "open311_invalid_field"
    assert _counts(api)[1] == 0


def test_error_descriptions_follow_accept_language(api: Api, demo_points: Point) -> None:
    zh = post(api.client, "json", form(demo_points))
    en = post(api.client, "json", form(demo_points), headers={"Accept-Language": "en"})
    assert "api_key" in zh.json()[0]["description"]
    assert "缺少" in zh.json()[0]["description"]
    assert en.json()[0]["description"].startswith("api_key missing")


@pytest.mark.parametrize("fmt", FORMATS)
def test_requests_carry_the_spec_fields_masked_for_the_public(
    api: Api, demo_points: Point, fmt: str
) -> None:
    key = issue_key(api.engine)
    lng, lat = demo_points(GRID)
    filed = _file(
        api,
        demo_points,
        key,
        description="楼下垃圾没人清，联系 13900001111 或身份证 440604199001011234 的房东",
        address_string="和平路 12 号（电话 13700002222）",
        media_url="https://img.example.org/p/2.jpg",
        phone="13812345678",
    )
    res = api.client.get(f"{BASE}/requests.{fmt}")
    if fmt == "xml":
        root = xml(res.content)
        assert all(tags(r) == REQUEST_FIELDS for r in root)
    else:
        assert all(list(r) == REQUEST_FIELDS for r in res.json())
    (item,) = _requests(res, fmt)
    assert item["service_request_id"] == filed["service_request_id"]
    assert item["status"] == "open"
    assert item["status_notes"] == "待受理"
    assert item["service_code"] == "0601"
    assert item["service_name"] == "暴露垃圾"
    assert item["description"] == (
        "楼下垃圾没人清，联系 139****1111 或身份证 440604********1234 的房东\n"
        "地址：和平路 12 号（电话 137****2222）\n"
        "图片：https://img.example.org/p/2.jpg"
    )
    assert "13812345678" not in res.text
    assert "138****5678" not in res.text
    assert item["address"].startswith("和平路 12 号（电话 137****2222）, ")
    assert item["address_id"] == GRID
    assert item["media_url"] == "https://img.example.org/p/2.jpg"
    assert item["agency_responsible"]
    # due_at: the time limit counted in working time (4 working hours from 09:00 local).
    assert item["expected_datetime"] == "2026-11-24T15:00:00+08:00"
    assert item["zipcode"] is None
    requested = datetime.fromisoformat(item["requested_datetime"])
    assert requested == api.clock.now
    assert item["requested_datetime"].endswith("+08:00")
    assert abs(float(item["lat"]) - lat) < 1e-6
    assert abs(float(item["long"]) - lng) < 1e-6
    one = api.client.get(f"{BASE}/requests/{filed['service_request_id']}.{fmt}")
    assert _requests(one, fmt) == [item]


def test_only_requests_filed_through_open311_are_public(api: Api, demo_points: Point) -> None:
    lng, lat = demo_points(GRID)
    worker = api.post(
        "gw440604011001001",
        "/v1/reports",
        {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": "邻里纠纷"},
    )
    assert worker.status_code == 201
    key = issue_key(api.engine)
    filed = _file(api, demo_points, key)
    listed = api.client.get(f"{BASE}/requests.json").json()
    assert [r["service_request_id"] for r in listed] == [filed["service_request_id"]]
    hidden = api.client.get(f"{BASE}/requests/{worker.json()['case_no']}.json")
    assert hidden.status_code == 404
    assert errors_of(hidden, "json")[0]["code"] == 404
    by_id = api.client.get(
        f"{BASE}/requests.json",
        params={"service_request_id": f"{worker.json()['case_no']},{filed['service_request_id']}"},
    )
    assert [r["service_request_id"] for r in by_id.json()] == [filed["service_request_id"]]


def test_statuses_map_to_open_and_closed_with_notes(api: Api, demo_points: Point) -> None:
    key = issue_key(api.engine)
    kept = _file(api, demo_points, key, description="垃圾一")
    rejected = _file(api, demo_points, key, description="垃圾二")
    merged = _file(api, demo_points, key, description="垃圾三")
    cases = {
        c["case_no"]: c["id"]
        for c in api.get("dispatcher", "/v1/cases", params={"channel": "open311"}).json()["items"]
    }
    reject = api.post(
        "dispatcher",
        f"/v1/cases/{cases[rejected['service_request_id']]}/reject",
        {"reason": "非本辖区事项，举报人电话 13811112222"},
    )
    assert reject.status_code == 200, reject.text
    merge = api.post(
        "dispatcher",
        f"/v1/cases/{cases[merged['service_request_id']]}/merge",
        {"into_case_id": cases[kept["service_request_id"]]},
    )
    assert merge.status_code == 200, merge.text
    api.clock.advance(minutes=1)
    listed = {r["service_request_id"]: r for r in api.client.get(f"{BASE}/requests.json").json()}
    assert listed[kept["service_request_id"]]["status"] == "open"
    assert listed[rejected["service_request_id"]]["status"] == "closed"
    assert listed[rejected["service_request_id"]]["status_notes"] == (
        "不予立案：非本辖区事项，举报人电话 138****2222"
    )
    assert listed[merged["service_request_id"]]["status"] == "closed"
    assert listed[merged["service_request_id"]]["status_notes"] == (
        f"已并入 {kept['service_request_id']}"
    )
    closed = api.client.get(f"{BASE}/requests.json", params={"status": "closed"}).json()
    assert {r["service_request_id"] for r in closed} == {
        rejected["service_request_id"],
        merged["service_request_id"],
    }
    opened = api.client.get(f"{BASE}/requests.xml", params={"status": "open"})
    assert [r["service_request_id"] for r in _requests(opened, "xml")] == [
        kept["service_request_id"]
    ]
    both = api.client.get(f"{BASE}/requests.json?status=open&status=closed").json()
    assert len(both) == 3


def test_filters_by_id_service_and_window(api: Api, demo_points: Point) -> None:
    key = issue_key(api.engine)
    old = _file(api, demo_points, key, description="旧的垃圾")
    api.clock.advance(days=10)
    light = _file(api, demo_points, key, service_code="0801", description="路灯不亮")
    ids = api.client.get(
        f"{BASE}/requests.json",
        params={"service_request_id": old["service_request_id"], "service_code": "0801"},
    ).json()
    assert [r["service_request_id"] for r in ids] == [old["service_request_id"]]
    by_code = api.client.get(f"{BASE}/requests.json", params={"service_code": "0801,0802"})
    assert [r["service_request_id"] for r in by_code.json()] == [light["service_request_id"]]
    newest_first = api.client.get(f"{BASE}/requests.json").json()
    assert [r["service_request_id"] for r in newest_first] == [
        light["service_request_id"],
        old["service_request_id"],
    ]
    window = api.client.get(
        f"{BASE}/requests.json",
        params={"start_date": "2026-11-30T00:00:00+08:00", "end_date": "2026-12-31T00:00:00Z"},
    )
    assert [r["service_request_id"] for r in window.json()] == [light["service_request_id"]]
    api.clock.advance(days=85)  # the default window is the last 90 days
    assert [r["service_request_id"] for r in api.client.get(f"{BASE}/requests.json").json()] == [
        light["service_request_id"]
    ]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"start_date": "2026-11-01"}, "open311_invalid_date"),
        ({"end_date": "2026-11-01T00:00:00"}, "open311_invalid_date"),
        (
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
            "open311_date_range",
        ),
        (
            {"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
            "open311_date_range",
        ),
        ({"status": "pending"}, "open311_invalid_status"),
        ({"stauts": "open"}, "open311_unknown_parameter"),
    ],
)
def test_bad_filters_are_400_in_the_requested_format(
    api: Api, fmt: str, params: dict[str, str], code: str
) -> None:
    res = api.client.get(f"{BASE}/requests.{fmt}", params=params)
    assert res.status_code == 400
    assert [e["code"] for e in errors_of(res, fmt)] == [400]
    assert res.headers["X-Gridgov-Error"] == code


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("/services.csv", "xml"),
        ("/services", "xml"),
        ("/requests/1.html", "xml"),
        ("/nothing.json", "json"),
        ("/services/0601", "xml"),
    ],
)
def test_unknown_formats_and_paths_are_the_specs_404(api: Api, path: str, fmt: str) -> None:
    res = api.client.get(BASE + path)
    assert res.status_code == 404
    assert [e["code"] for e in errors_of(res, fmt)] == [404]


def test_hostile_text_is_escaped_in_xml(api: Api, demo_points: Point) -> None:
    key = issue_key(api.engine)
    text = '<b>&amp;</b> ]]> "引号" \'单引号\' <!ENTITY x "y">'
    filed = _file(api, demo_points, key, fmt="xml", description=text)
    res = api.client.get(f"{BASE}/requests/{filed['service_request_id']}.xml")
    (item,) = _requests(res, "xml")
    assert item["description"] == text


def test_a_request_without_description_is_filed_under_its_service_name(
    api: Api, demo_points: Point
) -> None:
    key = issue_key(api.engine)
    filed = _file(api, demo_points, key, description=None, service_code="0801")
    (item,) = _requests(
        api.client.get(f"{BASE}/requests/{filed['service_request_id']}.json"), "json"
    )
    assert item["description"] == item["service_name"]
    assert item["service_code"] == "0801"
    assert item["media_url"] is None


def test_a_repeated_single_parameter_is_refused(api: Api, demo_points: Point) -> None:
    key = issue_key(api.engine)
    body = list(form(demo_points, api_key=key).items()) + [("lat", "23.0")]
    res = api.client.post(
        f"{BASE}/requests.json",
        content=urlencode(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert res.status_code == 400
    assert res.headers["X-Gridgov-Error"] == "open311_repeated_parameter"
    assert _counts(api) == (_counts(api)[0], 0)


def test_a_closed_loop_shows_closed_at_its_closure(api: Api, demo_points: Point) -> None:
    key = issue_key(api.engine)
    filed = _file(api, demo_points, key)
    (case,) = api.get("dispatcher", "/v1/cases", params={"channel": "open311"}).json()["items"]
    steps = [
        ("dispatcher", "register", {}),
        ("dispatcher", "dispatch", {}),
        ("dept-cgj", "accept", {}),
        ("dept-cgj", "resolve", {"note": "已清运"}),
        (f"gw{GRID}", "verify", {"passed": True}),
        ("dispatcher", "close", {}),
    ]
    for who, action, body in steps:
        api.clock.advance(minutes=10)
        res = api.post(who, f"/v1/cases/{case['id']}/{action}", body)
        assert res.status_code == 200, (action, res.text)
        shown = api.client.get(f"{BASE}/requests/{filed['service_request_id']}.json").json()[0]
        assert shown["status"] == ("closed" if action == "close" else "open")
    closed_at = api.clock.now
    api.clock.advance(hours=1)
    visit = api.post(
        "dispatcher", f"/v1/cases/{case['id']}/visit", {"satisfaction": "satisfied", "note": "好"}
    )
    assert visit.status_code == 200, visit.text
    (item,) = api.client.get(f"{BASE}/requests.json", params={"status": "closed"}).json()
    assert item["status_notes"] == "已结案"
    assert datetime.fromisoformat(item["updated_datetime"]) == closed_at
    assert item["agency_responsible"] == "区城市管理和综合执法局"


def test_line_breaks_of_a_description_are_kept_and_spaces_tidied(
    api: Api, demo_points: Point
) -> None:
    key = issue_key(api.engine)
    filed = _file(api, demo_points, key, description="第一行\r\n  第二行   有空格\x07\n\n第三行")
    shown = api.client.get(f"{BASE}/requests/{filed['service_request_id']}.json").json()[0]
    assert shown["description"] == "第一行\n第二行 有空格\n第三行"


def test_a_form_in_raw_utf8_keeps_its_chinese_and_invalid_utf8_is_refused(
    api: Api, demo_points: Point
) -> None:
    """`curl -d 'description=…'` sends UTF-8 bytes without percent-encoding them."""
    key = issue_key(api.engine)
    body = "&".join(f"{k}={v}" for k, v in form(demo_points, api_key=key).items()).encode()
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    res = api.client.post(f"{BASE}/requests.json", content=body, headers=urlencoded)
    assert res.status_code == 201, res.text
    case_no = res.json()[0]["service_request_id"]
    found = api.client.get(f"{BASE}/requests/{case_no}.json").json()[0]
    assert found["description"] == "路口垃圾桶满溢，垃圾散落一地"
    bad = api.client.post(
        f"{BASE}/requests.json", content=body + b"&address_string=\xff\xfe", headers=urlencoded
    )
    assert bad.status_code == 400
    assert _counts(api)[1] == 1
