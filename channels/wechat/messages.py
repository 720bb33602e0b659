"""WeChat's XML: inbound messages read with defusedxml, replies written with xml.etree.

Inbound XML is hostile until parsed: a DTD (billion laughs, external entities) is refused before
anything is expanded. Replies escape every character (no CDATA section a `]]>` could break) and
drop those XML 1.0 cannot carry, so WeChat never receives a malformed reply.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from core.errors import WechatMessageInvalid

# Characters XML 1.0 forbids (C0 controls but tab and line breaks, surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MAX_FIELD_CHARS = 4000
MAX_OPENID_CHARS = 128  # the report's reporter_identity column


def parse_fields(body: bytes) -> dict[str, str]:
    """The children of the root `<xml>` element as name → text (first occurrence wins)."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden):
        raise WechatMessageInvalid(reason="DTD or entity declarations are refused") from None
    except defusedxml.ExternalReferenceForbidden:
        raise WechatMessageInvalid(reason="external references are refused") from None
    except (ParseError, ValueError):
        raise WechatMessageInvalid(reason="not well-formed XML") from None
    if root.tag != "xml":
        raise WechatMessageInvalid(reason="the root element is not <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str) and child.tag not in fields:
            fields[child.tag] = (child.text or "").strip()[:_MAX_FIELD_CHARS]
    return fields


@dataclass(frozen=True)
class Inbound:
    """One message or event from a resident (`openid` = FromUserName)."""

    account: str  # ToUserName: the official account's original id (gh_…)
    openid: str
    create_time: int
    msg_type: str
    msg_id: str | None
    fields: dict[str, str]

    @property
    def key(self) -> str:
        """The dedupe key: MsgId, or for events (no MsgId) FromUserName + CreateTime (+ the
        event's name); hashed, so the stored key carries no OpenID."""
        raw = (
            f"msg:{self.msg_id}"
            if self.msg_id
            else f"event:{self.openid}:{self.create_time}:{self.fields.get('Event', '')}"
        )
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


def inbound(fields: dict[str, str]) -> Inbound:
    """The message a set of fields describes; the common fields are required."""
    openid = fields.get("FromUserName", "")
    create_time = fields.get("CreateTime", "")
    msg_type = fields.get("MsgType", "").lower()
    if not openid or not msg_type or not create_time.isdigit() or len(create_time) > 12:
        raise WechatMessageInvalid(reason="FromUserName, CreateTime and MsgType are required")
    # An OpenID is the resident's key (28 characters in practice): taken as given or refused.
    if len(openid) > MAX_OPENID_CHARS or not openid.isprintable() or openid != openid.strip():
        raise WechatMessageInvalid(reason="FromUserName is not an OpenID")
    return Inbound(
        account=fields.get("ToUserName", ""),
        openid=openid,
        create_time=int(create_time),
        msg_type=msg_type,
        msg_id=fields.get("MsgId") or None,
        fields=fields,
    )


def xml_text(value: str) -> str:
    """Text XML 1.0 can carry."""
    return _NOT_XML.sub("", value)


def _document(items: list[tuple[str, str]]) -> str:
    root = ET.Element("xml")
    for name, value in items:
        ET.SubElement(root, name).text = xml_text(value)
    return ET.tostring(root, encoding="unicode")


def text_reply(message: Inbound, content: str, *, now: int) -> str:
    """A passive text reply to the sender of `message` (To/From swapped)."""
    return _document(
        [
            ("ToUserName", message.openid),
            ("FromUserName", message.account),
            ("CreateTime", str(now)),
            ("MsgType", "text"),
            ("Content", content),
        ]
    )


def encrypted_reply(*, encrypt: str, signature: str, timestamp: str, nonce: str) -> str:
    """The safe-mode envelope of a reply."""
    return _document(
        [
            ("Encrypt", encrypt),
            ("MsgSignature", signature),
            ("TimeStamp", timestamp),
            ("Nonce", nonce),
        ]
    )
