"""Errors of the Open311 GeoReport v2 channel and its api keys. GeoReport answers them as its
list of {code, description}: 403 for a missing or wrong api_key, 404 for what does not exist,
400 for everything else the client can fix (the spec's statuses)."""

from __future__ import annotations

from core.errors.base import Forbidden, GridgovError, NotFound


class Open311BadRequest(GridgovError):
    """A GeoReport request the client must change (400): nothing was stored."""

    status_code = 400


class Open311KeyMissing(Forbidden):
    """POST /open311/v2/requests without an api_key."""

    code = "open311_api_key_missing"
    zh = "缺少 api_key：提交服务请求须带上管理员签发的 api_key"
    en = "api_key missing: creating a service request needs an api_key issued by the administrator"


class Open311KeyInvalid(Forbidden):
    """An api_key that was never issued or has been revoked."""

    code = "open311_api_key_invalid"
    zh = "api_key 无效或已吊销，无法提交服务请求"
    en = "invalid or revoked api_key: the service request cannot be created"


class Open311ServiceRequired(Open311BadRequest):
    """POST without a service_code (GET services lists them)."""

    code = "open311_service_code_required"
    zh = "缺少 service_code：请先从 services 列表选择服务类型"
    en = "service_code missing: pick a service type from the services list"


class Open311UnknownService(NotFound):
    """A service_code that is no subcategory of the catalogue in force."""

    code = "open311_unknown_service"
    zh = "服务类型 service_code={service_code!r} 不存在"
    en = "no service with service_code={service_code!r}"
    example = {"service_code": "9999"}


class Open311LocationRequired(Open311BadRequest):
    """POST without lat and long: reports are placed in a micro-grid by their point."""

    code = "open311_location_required"
    zh = (
        "须同时提供 lat 与 long（WGS-84 经纬度）：本区按网格受理，"
        "仅有 address_string 或 address_id 无法定位到网格"
    )
    en = (
        "lat and long (WGS-84) are both required: reports are placed in a grid by their point; "
        "an address_string or address_id alone cannot be placed"
    )


class Open311InvalidField(Open311BadRequest):
    """A GeoReport parameter with a value this service cannot take (named, with the rule)."""

    code = "open311_invalid_field"
    zh = "参数 {name} 无效：{rule_zh}"
    en = "invalid {name}: {rule_en}"
    example = {
        "name": "media_url",
        "rule_zh": "须为 http:// 或 https:// 地址，最长 2000 个字符",
        "rule_en": "an http:// or https:// URL of at most 2000 characters",
    }


class Open311UnknownParameter(Open311BadRequest):
    """A parameter the GeoReport method does not take (a misspelt filter would match all)."""

    code = "open311_unknown_parameter"
    zh = "不支持参数 {name!r}；此方法接受：{accepted}"
    en = "unknown parameter {name!r}; this method takes: {accepted}"
    example = {"name": "stauts", "accepted": "status, service_code"}


class Open311RepeatedParameter(Open311BadRequest):
    """A parameter given twice that takes one value (filters take comma lists instead)."""

    code = "open311_repeated_parameter"
    zh = "参数 {name!r} 只能出现一次"
    en = "parameter {name!r} may appear only once"
    example = {"name": "lat"}


class Open311InvalidDate(Open311BadRequest):
    """start_date / end_date not a W3C datetime with its time zone."""

    code = "open311_invalid_date"
    zh = "{name} 须为带时区的 W3C 日期时间，如 2026-01-01T00:00:00Z 或 2026-01-01T08:00:00+08:00"
    en = "{name} must be a W3C datetime with a time zone, e.g. 2026-01-01T00:00:00Z"
    example = {"name": "start_date"}


class Open311DateRange(Open311BadRequest):
    """start_date after end_date, or a span over the spec's 90 days."""

    code = "open311_date_range"
    zh = "start_date 须不晚于 end_date，且跨度不超过 {max_days} 天"
    en = "start_date must not be after end_date, and the span at most {max_days} days"
    example = {"max_days": 90}


class Open311InvalidStatus(Open311BadRequest):
    """A status filter other than open and closed."""

    code = "open311_invalid_status"
    zh = "status 只能是 open 或 closed（可用逗号分隔多个），收到 {value!r}"
    en = "status must be open or closed (comma-separated), got {value!r}"
    example = {"value": "pending"}


class Open311RequestNotFound(NotFound):
    """No service request (filed through Open311) with that id."""

    code = "open311_request_not_found"
    zh = "服务请求 {service_request_id} 不存在"
    en = "no service request {service_request_id}"
    example = {"service_request_id": "20261124000042"}


class Open311TokenNotFound(NotFound):
    """No service request was answered with that token."""

    code = "open311_token_not_found"
    zh = "token {token} 不存在"
    en = "no service request has token {token}"
    example = {"token": "Zq3…"}


class Open311FormatNotFound(NotFound):
    """A GeoReport address without .xml or .json, or with another suffix."""

    code = "open311_format_not_found"
    zh = "地址不存在：GeoReport 资源须以 .xml 或 .json 结尾"
    en = "not found: GeoReport resources end in .xml or .json"


class Open311InvalidAppName(Open311BadRequest):
    """`open311 keys add --name`: 1-32 letters, digits, dot, dash or underscore."""

    code = "open311_invalid_app_name"
    zh = "应用名 {name!r} 无效：须为 1-32 个字母、数字、点、连字符或下划线"
    en = "invalid app name {name!r}: 1-32 letters, digits, dots, dashes or underscores"
    example = {"name": "my app"}


class Open311KeyNotFound(NotFound):
    """`open311 keys revoke` of a key id that was never issued."""

    code = "open311_key_not_found"
    zh = "api_key 编号 {key_id} 不存在"
    en = "no api_key with id {key_id}"
    example = {"key_id": 7}
