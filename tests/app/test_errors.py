"""Errors: one class per code, messages in Chinese (default) or English, chosen per request."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli import main
from core import errors as errors_module
from core.errors import (
    ACTION_NAMES_ZH,
    REGISTRY,
    DescriptionTooLong,
    GridgovError,
    ImportRefused,
    InvalidGrids,
    NotPermitted,
    ValidationFailed,
    error_table,
    language_of_locale,
    pick_language,
)
from core.errors.validation import describe, plain_errors
from dispatch.workflow import Action, Party
from tests.conftest import ROOT, Api, new_client_id

CJK = re.compile(r"[\u4e00-\u9fff]")
GRID = "440604011001001"
WORKER = f"gw{GRID}"
EN = {"Accept-Language": "en"}


# --- the classes -------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(REGISTRY))
def test_every_code_renders_in_both_languages_from_its_example(code: str) -> None:
    cls = REGISTRY[code]
    exc = cls(**cls.example)
    assert exc.code == code
    assert 400 <= exc.status_code <= 599
    zh, en = exc.message("zh"), exc.message("en")
    assert CJK.search(zh), zh
    assert re.search(r"[a-z]{3}", en), en
    assert zh != en
    assert exc.detail == zh
    assert cls.meaning()


def test_message_fills_the_parameters_in_each_language() -> None:
    exc = DescriptionTooLong(chars=1200, limit=1000)
    assert exc.message("zh") == "描述有 1200 个字符，最多接受 1000 个"
    assert exc.message("en") == "description is 1200 characters; at most 1000 are accepted"


def test_a_class_takes_exactly_its_parameters() -> None:
    with pytest.raises(TypeError, match="limit"):
        DescriptionTooLong(chars=1200)
    with pytest.raises(TypeError, match="detail"):
        DescriptionTooLong(chars=1, limit=1, detail="free text")
    with pytest.raises(TypeError, match="base class"):
        ValidationFailed()


def test_a_code_cannot_be_declared_twice() -> None:
    with pytest.raises(TypeError, match="declared twice"):

        class Again(GridgovError):
            """A second empty_description."""

            code = "empty_description"
            zh = "再一次"
            en = "again"


def test_chinese_messages_name_every_action_and_party() -> None:
    assert set(ACTION_NAMES_ZH) == {a.value for a in Action}
    for party in Party:
        message = NotPermitted(party=party.value, action="close").message("zh")
        assert "「结案」" in message
        assert party.value not in message


def test_refused_import_lists_every_problem_after_its_summary() -> None:
    problems = [f"{n}: appears 2 times in the file" for n in range(ImportRefused.MAX_LISTED + 3)]
    exc = InvalidGrids(problems=problems)
    assert exc.summary("zh") == f"网格导入被拒绝，未保存任何内容：{len(problems)} 个问题"
    lines = exc.message("en").splitlines()
    assert lines[0] == f"grid import refused, nothing stored: {len(problems)} problems"
    assert lines[1:-1] == [f"- {p}" for p in problems[: ImportRefused.MAX_LISTED]]
    assert lines[-1] == "- … and 3 more"
    assert exc.message("zh").splitlines()[-1] == "- … 另有 3 个"


def test_pydantic_errors_keep_their_field_and_translate_common_kinds() -> None:
    errors = plain_errors(
        [
            {"type": "missing", "loc": ("body", "lat"), "msg": "Field required"},
            {
                "type": "string_too_long",
                "loc": ("body", "client_id"),
                "msg": "String should have at most 64 characters",
                "ctx": {"max_length": 64},
            },
            {"type": "url_scheme", "loc": ("body", "x"), "msg": "URL scheme should be 'https'"},
        ]
    )
    assert describe(errors, "zh") == (
        "lat：缺少此字段；client_id：最多 64 个字符；x：取值无效（URL scheme should be 'https'）"
    )
    assert describe(errors, "en") == (
        "lat: Field required; client_id: String should have at most 64 characters; "
        "x: URL scheme should be 'https'"
    )


# --- the language of the answer ----------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "zh"),
        ("", "zh"),
        ("en", "en"),
        ("en-US", "en"),
        ("EN-gb", "en"),
        ("en;q=0.9, zh;q=0.1", "en"),
        ("zh;q=0.1, en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en;q=0.5, zh", "zh"),
        ("fr, en;q=0.3", "en"),
        ("fr, de", "zh"),
        ("*", "zh"),
        ("en;q=0", "zh"),
        ("zh;q=0, en", "en"),
        ("en, zh", "en"),
        ("zh, en", "zh"),
        ("en;q=abc", "zh"),
        ("en;q=1.5", "zh"),
        ("en ; q = 0.7 , zh ; q = 0.6", "en"),
    ],
)
def test_accept_language_picks_english_only_when_preferred(header: str | None, lang: str) -> None:
    assert pick_language(header) == lang


@pytest.mark.parametrize(
    ("environ", "lang"),
    [
        ({}, "zh"),
        ({"LANG": "C.UTF-8"}, "zh"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8", "LC_ALL": ""}, "en"),
    ],
)
def test_command_line_language_follows_the_locale(environ: dict[str, str], lang: str) -> None:
    assert language_of_locale(environ) == lang


def _report(api: Api, demo_points: Any, headers: dict[str, str], **over: Any) -> Any:
    lng, lat = demo_points(GRID)
    body = {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": "井盖丢失"}
    body.update(over)
    return api.client.post("/v1/reports", json=body, headers={**api.headers(WORKER), **headers})


def test_detail_is_chinese_by_default_and_english_on_request(api: Api, demo_points: Any) -> None:
    zh = _report(api, demo_points, {}, description="   ")
    assert zh.status_code == 422
    assert zh.json() == {"error": "empty_description", "detail": "描述不能为空"}
    assert zh.headers["content-language"] == "zh-CN"
    assert "accept-language" in zh.headers["vary"].lower()
    en = _report(api, demo_points, {"Accept-Language": "en-US,en;q=0.9"}, description="   ")
    assert en.json() == {"error": "empty_description", "detail": "description must not be empty"}
    assert en.headers["content-language"] == "en"
    mixed = _report(api, demo_points, {"Accept-Language": "en;q=0.2, zh;q=0.8"}, description="")
    assert mixed.json()["detail"] == "描述不能为空"


def test_validation_error_names_fields_in_the_chosen_language(api: Api, demo_points: Any) -> None:
    zh = _report(api, demo_points, {}, lat=None, description=1)
    assert zh.status_code == 422
    assert zh.json()["error"] == "validation_error"
    assert zh.json()["detail"].startswith("请求内容无效：")
    assert "description：须为字符串" in zh.json()["detail"]
    en = _report(api, demo_points, EN, lat=None, description=1)
    assert en.json()["detail"].startswith("invalid request: ")
    assert "description: Input should be a valid string" in en.json()["detail"]


def test_batch_item_errors_follow_the_request_language(api: Api, demo_points: Any) -> None:
    lng, lat = demo_points(GRID)
    item = {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": " "}
    for headers, detail in (({}, "描述不能为空"), (EN, "description must not be empty")):
        res = api.client.post(
            "/v1/reports/batch",
            json={"reports": [item, {"client_id": new_client_id()}]},
            headers={**api.headers(WORKER), **headers},
        )
        assert res.status_code == 200, res.text
        first, second = res.json()["results"]
        assert first["error"] == {"error": "empty_description", "detail": detail}
        assert second["error"]["error"] == "validation_error"
        assert ("缺少此字段" in second["error"]["detail"]) == (headers == {})


def test_framework_errors_are_registered_codes_in_both_languages(client: TestClient) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.json() == {"error": "not_found", "detail": "请求的地址不存在"}
    assert client.get("/v1/nothing-here", headers=EN).json()["detail"] == "not found"
    wrong = client.delete("/healthz", headers=EN)
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "method_not_allowed", "detail": "method not allowed"}
    assert "GET" in wrong.headers["allow"]
    plain = client.post("/v1/reports", content=b"x=1", headers={"Content-Type": "text/plain", **EN})
    assert plain.status_code == 415
    assert plain.json() == {
        "error": "unsupported_media_type",
        "detail": "send the body as application/json",
    }
    big = client.post("/v1/reports", content=b"{" * 2_000_000, headers={**EN})
    assert big.status_code == 413
    assert big.json()["error"] == "payload_too_large"
    assert re.fullmatch(r"body over \d+ bytes", big.json()["detail"])
    broken = client.post(
        "/v1/reports", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json() == {"error": "malformed_json", "detail": "请求体不是有效的 JSON"}
    no_token = client.get("/v1/cases")
    assert no_token.json() == {"error": "missing_token", "detail": "需要 Bearer 令牌，请先登录"}


def test_openapi_documents_the_error_body_with_every_code(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "detail"]
    assert error["properties"]["error"]["enum"] == sorted(REGISTRY)
    assert "Accept-Language" in error["properties"]["detail"]["description"]
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in spec["paths"].values():
        for operation in path_item.values():
            for status in ("401", "422", "503"):
                content = operation["responses"][status]["content"]
                assert content["application/json"]["schema"] == ref


# --- the command line --------------------------------------------------------------------


def test_gridgov_errors_prints_the_table() -> None:
    res = CliRunner().invoke(main, ["errors"], catch_exceptions=False)
    assert res.exit_code == 0
    assert res.output == error_table()
    assert len(res.output.splitlines()) == len(REGISTRY) + 2


@pytest.mark.parametrize(
    ("locale", "detail"),
    [
        ("zh_CN.UTF-8", "用户 'nobody' 不存在"),
        ("C.UTF-8", "用户 'nobody' 不存在"),
        ("en_US.UTF-8", "no user 'nobody'"),
    ],
)
def test_command_line_errors_speak_the_locale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locale: str, detail: str
) -> None:
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner(env={"LC_ALL": None, "LC_MESSAGES": None, "LANG": locale})
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    res = runner.invoke(main, ["users", "disable", "nobody"])
    assert res.exit_code == 2
    assert res.output.strip() == f"error: unknown_user: {detail}"


# --- the raise sites ---------------------------------------------------------------------

PRODUCT = (
    "core",
    "app",
    "grid",
    "taxonomy",
    "media",
    "dispatch",
    "events",
    "notify",
    "channels",
    "surveillance",
)
ERROR_CLASSES: dict[str, type[GridgovError]] = {
    name: obj
    for name, obj in vars(errors_module).items()
    if isinstance(obj, type) and issubclass(obj, GridgovError)
}


def _trees() -> list[tuple[str, ast.AST]]:
    """The product's modules outside core/errors, parsed."""
    trees = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not path.is_relative_to(ROOT / "core" / "errors"):
                source = path.read_text("utf-8")
                trees.append((str(path.relative_to(ROOT)), ast.parse(source, filename=str(path))))
    return trees


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _calls() -> list[tuple[str, int, ast.Call, str]]:
    """Every call of a name in product code outside core/errors: (file, line, call, name)."""
    found = []
    for where, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (name := _name(node.func)) is not None:
                found.append((where, node.lineno, node, name))
    return found


def test_every_registered_class_is_raised_in_the_product() -> None:
    """Called, or handed to the code that calls it (the framework's 404 and 405 by status)."""
    used = {_name(node) for _, tree in _trees() for node in ast.walk(tree)}
    unused = sorted(cls.__name__ for cls in REGISTRY.values() if cls.__name__ not in used)
    assert unused == [], f"error classes raised nowhere: {unused}"


def test_every_raise_site_passes_the_class_parameters_and_no_free_text() -> None:
    bad = []
    for where, line, call, name in _calls():
        cls = ERROR_CLASSES.get(name)
        if cls is None:
            continue
        given = {k.arg for k in call.keywords}
        if cls.code == "":
            bad.append(f"{where}:{line}: {name} is a base class")
        elif call.args or None in given or given != set(cls.example):
            bad.append(f"{where}:{line}: {name}({', '.join(sorted(map(str, given)))})")
    assert bad == []
