"""Errors of the rules: places and grids, the catalogue, intake and accounts (the workflow,
the calendar and the audit log: `core.errors.workflow`)."""

from __future__ import annotations

from core.errors.base import (
    Conflict,
    Forbidden,
    GridgovError,
    ImportRefused,
    NotFound,
    ValidationFailed,
)

# --- places and grids --------------------------------------------------------------------


class UnknownCrs(ValidationFailed):
    """A `crs` other than wgs84, gcj02, EPSG:4326 or EPSG:4490."""

    code = "unknown_crs"
    zh = "未知坐标系 {crs!r}，可用：wgs84、gcj02、EPSG:4326、EPSG:4490"
    en = "unknown crs {crs!r}; use wgs84, gcj02, EPSG:4326 or EPSG:4490"
    example = {"crs": "bd09"}


class InvalidCoordinates(ValidationFailed):
    """`lat`/`lng` missing, not numbers, not finite or out of range."""

    code = "invalid_coordinates"
    zh = "lat 与 lng 须为有限数字，lat 在 [-90, 90] 内，lng 在 [-180, 180] 内"
    en = "lat and lng must be finite numbers, lat within [-90, 90] and lng within [-180, 180]"


class OutsideDistrict(ValidationFailed):
    """The point is in no grid, and farther than GRIDGOV_GRID_TOLERANCE_M from every grid."""

    code = "outside_district"
    zh = "位置 ({lat:.6f}, {lng:.6f}, {crs}) 在辖区之外（距所有网格超过 {tolerance_m:g} 米）"
    en = (
        "the point ({lat:.6f}, {lng:.6f}, {crs}) is outside the district "
        "(more than {tolerance_m:g} m from every grid)"
    )
    example = {"lat": 23.1, "lng": 113.2, "crs": "gcj02", "tolerance_m": 50.0}


class GridNotFound(NotFound):
    """No area has this grid code."""

    code = "grid_not_found"
    zh = "网格 {grid} 不存在"
    en = "grid {grid} not found"
    example = {"grid": "440604011001001"}


class UnknownGrid(ValidationFailed):
    """A grid code given for an account or a case names no grid."""

    code = "unknown_grid"
    zh = "未知网格：{grids}"
    en = "unknown grid(s): {grids}"
    example = {"grids": "440604011001999"}


class InvalidGeojson(ValidationFailed):
    """A grid file that cannot be read as GeoJSON (the reader's words follow)."""

    code = "invalid_geojson"
    zh = "GeoJSON 无效：{reason}"
    en = "invalid GeoJSON: {reason}"
    example = {"reason": "not UTF-8 JSON"}


class InvalidArea(ValidationFailed):
    """An area written without the import's checks (the demo) has a bad code or geometry."""

    code = "invalid_area"
    zh = "区域 {area!r}：编码须为 6、9、12 或 15 位数字，几何须为面"
    en = "area {area!r}: the code must have 6, 9, 12 or 15 digits and the geometry be polygonal"
    example = {"area": "44060401"}


class InvalidGrids(ImportRefused):
    """A grid import refused whole (bad codes or geometry, orphans, overlaps, gaps…)."""

    code = "invalid_grids"
    zh = "网格导入被拒绝，未保存任何内容：{count} 个问题"
    en = "grid import refused, nothing stored: {count} problem{s}"
    example = {"problems": ["440604011001001: appears 2 times in the file"]}


# --- the catalogue -----------------------------------------------------------------------


class InvalidCatalogue(ImportRefused):
    """A catalogue import refused whole (schema, unknown departments, codes open cases use)."""

    code = "invalid_catalogue"
    zh = "分类目录导入被拒绝，未保存任何内容：{count} 个问题"
    en = "catalogue import refused, nothing stored: {count} problem{s}"
    example = {"problems": ["unknown department code xyz"]}


class InvalidHistory(ImportRefused):
    """Past cases (`classifier import-history`) refused whole; each problem names its cell."""

    code = "invalid_history"
    zh = "历史案件导入被拒绝，未保存任何内容：{count} 个问题"
    en = "history import refused, nothing stored: {count} problem{s}"
    example = {"problems": ["row 3, column subcategory_code: unknown subcategory 9999"]}


class UnknownCategory(ValidationFailed):
    """A category code not in the catalogue (codes are 01-17)."""

    code = "unknown_category"
    zh = "未知大类 {category!r}，大类编码为 01-17"
    en = "unknown category {category!r}; codes are 01-17"
    example = {"category": "18"}


class UnknownItem(ValidationFailed):
    """An item (条) code that is not one of the subcategory's items in the catalogue."""

    code = "unknown_item"
    zh = "小类 {subcategory} 下没有条目 {item!r}"
    en = "no item {item!r} under subcategory {subcategory}"
    example = {"item": "0101999", "subcategory": "0101"}


class UnknownSubcategory(ValidationFailed):
    """A subcategory code not in the catalogue, or not in the category given with it."""

    code = "unknown_subcategory"
    zh = "未知小类 {subcategory!r}（或不属于所给大类）"
    en = "unknown subcategory {subcategory!r} (or not in the category given)"
    example = {"subcategory": "0199"}


class UnknownDepartment(ValidationFailed):
    """A department code that names no (active) department."""

    code = "unknown_department"
    zh = "未知部门 {department!r}"
    en = "unknown department {department!r}"
    example = {"department": "xyz"}


# --- intake ------------------------------------------------------------------------------


class ClientIdConflict(Conflict):
    """The reporter's `client_id` was used before for a different report."""

    code = "client_id_conflict"
    zh = "client_id {client_id!r} 已用于另一份不同的上报"
    en = "client_id {client_id!r} was already used for a different report"
    example = {"client_id": "phone-1-0001"}


class InvalidReporter(ValidationFailed):
    """The reporter's identity (WeChat openid, Open311 key) is empty, too long or unprintable."""

    code = "invalid_reporter"
    zh = "上报人标识无效（渠道 {channel}）：须为 1 至 128 个字符，且不含控制字符"
    en = (
        "invalid reporter identity on channel {channel}: 1 to 128 characters, no control characters"
    )
    example = {"channel": "wechat"}


class EmptyDescription(ValidationFailed):
    """The description is empty or blank."""

    code = "empty_description"
    zh = "描述不能为空"
    en = "description must not be empty"


class DescriptionTooLong(ValidationFailed):
    """The description is longer than GRIDGOV_MAX_DESCRIPTION_CHARS."""

    code = "description_too_long"
    zh = "描述有 {chars} 个字符，最多接受 {limit} 个"
    en = "description is {chars} characters; at most {limit} are accepted"
    example = {"chars": 2400, "limit": 2000}


class UnknownAttachment(ValidationFailed):
    """Attachment ids that name no uploaded attachment, or one someone else uploaded."""

    code = "unknown_attachment"
    zh = "未知附件：{ids}"
    en = "unknown attachment ids: {ids}"
    example = {"ids": "a1, a2"}


# --- attachments -------------------------------------------------------------------------


class UnsupportedAttachment(GridgovError):
    """An upload whose content (not its name or type) is no JPEG, PNG or WebP image."""

    code = "unsupported_attachment_type"
    status_code = 415
    zh = "附件须为 JPEG、PNG 或 WebP 图片"
    en = "attachments must be JPEG, PNG or WebP images"


class AttachmentTooLarge(GridgovError):
    """An upload larger than GRIDGOV_ATTACHMENT_MAX_BYTES."""

    code = "attachment_too_large"
    status_code = 413
    zh = "附件超过 {limit} 字节"
    en = "attachment over {limit} bytes"
    example = {"limit": 10_485_760}


class ImageTooManyPixels(GridgovError):
    """An image whose header claims over GRIDGOV_ATTACHMENT_MAX_PIXELS pixels (an image bomb)."""

    code = "image_too_many_pixels"
    status_code = 413
    zh = "图片像素超过 {limit} 个"
    en = "image over {limit} pixels"
    example = {"limit": 40_000_000}


class InvalidImage(ValidationFailed):
    """An upload that starts like a JPEG, PNG or WebP image but cannot be decoded."""

    code = "invalid_image"
    zh = "图片已损坏或无法解码"
    en = "the image is damaged or cannot be decoded"


class AttachmentFileMissing(ValidationFailed):
    """An upload without exactly one multipart field `file`."""

    code = "attachment_file_missing"
    zh = "请以 multipart/form-data 的 file 字段上传一个文件"
    en = "send one file in the multipart/form-data field `file`"


class AttachmentsNotAccepted(ValidationFailed):
    """`attachment_ids` given to an action that takes no photos (only resolve and verify do)."""

    code = "attachments_not_accepted"
    zh = "操作 {action} 不接受附件（仅反馈 resolve 与核查 verify 可附照片）"
    en = "action {action} takes no attachments (only resolve and verify do)"
    example = {"action": "close"}


class AttachmentNotFound(NotFound):
    """No attachment with this id that you may see."""

    code = "attachment_not_found"
    zh = "附件 {attachment} 不存在"
    en = "attachment {attachment} not found"
    example = {"attachment": "3q2-7wAbC"}


class InvalidOccurredAt(ValidationFailed):
    """`occurred_at` without a timezone offset, before 1900 or in the future."""

    code = "invalid_occurred_at"
    zh = "occurred_at 须带时区偏移，且在 1900 年之后、不晚于当前时间"
    en = "occurred_at needs a timezone offset and must lie between 1900 and now"


# --- accounts (the command line) ---------------------------------------------------------


class InvalidUsername(ValidationFailed):
    """A username must be 2-64 letters, digits, `_ . @ -`."""

    code = "invalid_username"
    zh = "用户名须为 2-64 个字母、数字或 _ . @ -"
    en = "username: 2-64 characters of letters, digits, _ . @ -"


class WeakPassword(ValidationFailed):
    """A password shorter than the minimum."""

    code = "weak_password"
    zh = "密码至少需要 {min_chars} 个字符"
    en = "password needs at least {min_chars} characters"
    example = {"min_chars": 8}


class GridRequired(ValidationFailed):
    """A grid worker account needs at least one `--grid`."""

    code = "grid_required"
    zh = "网格员账号需要 --grid"
    en = "a grid worker needs --grid"


class InvalidGrid(ValidationFailed):
    """Only grid worker accounts have grids."""

    code = "invalid_grid"
    zh = "只有网格员账号有网格"
    en = "only grid workers have grids"


class DepartmentRequired(ValidationFailed):
    """A department account needs `--department`."""

    code = "department_required"
    zh = "部门账号需要 --department"
    en = "a department account needs --department"


class InvalidDepartment(ValidationFailed):
    """Only department accounts have a department."""

    code = "invalid_department"
    zh = "只有部门账号有所属部门"
    en = "only department accounts have a department"


class InvalidCentreArea(ValidationFailed):
    """Only dispatcher accounts have an area (their command centre's 镇街 or 村居)."""

    code = "invalid_centre_area"
    zh = "只有调度员账号可以指定 --area（镇街或村居指挥中心）"
    en = "only dispatcher accounts have an --area (a town or village command centre)"


class UnknownCentreArea(ValidationFailed):
    """A command centre's area must be an existing 镇街 (9 digits) or 村居 (12 digits)."""

    code = "unknown_centre_area"
    zh = "区域 {area} 不是已有的镇街（9 位）或村居（12 位）"
    en = "{area} is not an existing town (9 digits) or village (12 digits)"
    example = {"area": "440604011"}


class UsernameTaken(Conflict):
    """An account with this username exists."""

    code = "username_taken"
    zh = "用户 {username!r} 已存在"
    en = "user {username!r} exists"
    example = {"username": "wang"}


class UnknownUser(NotFound):
    """No account with this username."""

    code = "unknown_user"
    zh = "用户 {username!r} 不存在"
    en = "no user {username!r}"
    example = {"username": "wang"}


# --- WeChat official account (inbound webhook) -------------------------------------------------


class WechatNotConfigured(NotFound):
    """`/wechat` answers only when GRIDGOV_WECHAT_TOKEN and GRIDGOV_WECHAT_APPID are set."""

    code = "wechat_not_configured"
    zh = "未配置微信公众号接入"
    en = "the WeChat official account is not configured"


class WechatSignatureInvalid(Forbidden):
    """A WeChat call whose `signature` (or safe mode's `msg_signature`) is missing or wrong."""

    code = "wechat_signature_invalid"
    zh = "微信签名无效"
    en = "invalid WeChat signature"


class WechatStaleTimestamp(Forbidden):
    """A WeChat call stamped further from now than GRIDGOV_WECHAT_TIMESTAMP_WINDOW_SECONDS."""

    code = "wechat_stale_timestamp"
    zh = "微信请求时间戳超出 {window} 秒的允许范围"
    en = "the WeChat timestamp is more than {window} s from now"
    example = {"window": 300}


class WechatAppidMismatch(Forbidden):
    """A safe-mode message sealed for another official account (AppID)."""

    code = "wechat_appid_mismatch"
    zh = "消息不属于本公众号（AppID 不符）"
    en = "the message is sealed for another AppID"


class WechatMessageInvalid(GridgovError):
    """A WeChat body that is no message (not XML, a DTD, fields missing, no key opens it)."""

    code = "wechat_message_invalid"
    zh = "无效的微信消息：{reason}"
    en = "invalid WeChat message: {reason}"
    example = {"reason": "not XML"}
