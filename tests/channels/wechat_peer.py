"""WeChat's side of the webhook, played by wechatpy (an independent implementation): it signs
and encrypts every call, and decrypts and parses every reply of ours."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

TOKEN = "gridgovWechatToken2026"
APPID = "wx5f3e7c1a9b2d4e60"
ACCOUNT = "gh_0123456789ab"


def encoding_aes_key(seed: str) -> str:
    """A 43-character EncodingAESKey (as the official account's console shows one)."""
    return base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode().rstrip("=")


AES_KEY = encoding_aes_key("current")
OLD_AES_KEY = encoding_aes_key("previous")
WECHAT_SETTINGS = {
    "wechat_token": TOKEN,
    "wechat_appid": APPID,
    "wechat_aes_key": AES_KEY,
    "wechat_aes_key_previous": OLD_AES_KEY,
}

_ids = itertools.count(7_000_000_000_000_000_001)


def msg_id() -> str:
    return str(next(_ids))


def openid() -> str:
    """A fresh OpenID (28 characters, like WeChat's)."""
    return "o6_bm" + uuid.uuid4().hex[:23]


def _xml(fields: dict[str, Any]) -> str:
    return str(xmltodict.unparse({"xml": fields}, full_document=False))


def text(user: str, content: str, *, at: int, mid: str | None = None) -> str:
    return _xml(
        {
            "ToUserName": ACCOUNT,
            "FromUserName": user,
            "CreateTime": at,
            "MsgType": "text",
            "Content": content,
            "MsgId": mid or msg_id(),
        }
    )


def location(
    user: str, lat: float, lng: float, *, at: int, label: str = "", mid: str | None = None
) -> str:
    return _xml(
        {
            "ToUserName": ACCOUNT,
            "FromUserName": user,
            "CreateTime": at,
            "MsgType": "location",
            "Location_X": f"{lat:.6f}",
            "Location_Y": f"{lng:.6f}",
            "Scale": "15",
            "Label": label,
            "MsgId": mid or msg_id(),
        }
    )


def image(user: str, media_id: str, *, at: int, mid: str | None = None) -> str:
    return _xml(
        {
            "ToUserName": ACCOUNT,
            "FromUserName": user,
            "CreateTime": at,
            "MsgType": "image",
            "PicUrl": f"http://mmbiz.qpic.cn/{media_id}",
            "MediaId": media_id,
            "MsgId": mid or msg_id(),
        }
    )


def voice(user: str, recognition: str, *, at: int, mid: str | None = None) -> str:
    return _xml(
        {
            "ToUserName": ACCOUNT,
            "FromUserName": user,
            "CreateTime": at,
            "MsgType": "voice",
            "MediaId": "voice-" + uuid.uuid4().hex[:8],
            "Format": "amr",
            "Recognition": recognition,
            "MsgId": mid or msg_id(),
        }
    )


def event(user: str, name: str, *, at: int) -> str:
    return _xml(
        {
            "ToUserName": ACCOUNT,
            "FromUserName": user,
            "CreateTime": at,
            "MsgType": "event",
            "Event": name,
        }
    )


def sign(token: str, *parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, *parts)
    return str(signer.signature)


@dataclass
class Peer:
    """Sends messages to `/wechat` as WeChat does; `safe` chooses safe mode (安全模式)."""

    client: Any  # TestClient or httpx.Client
    now: Any  # () -> unix seconds
    safe: bool = True
    token: str = TOKEN
    appid: str = APPID
    aes_key: str = AES_KEY
    sent: list[httpx.Response] = field(default_factory=list)

    def call(self, xml: str, *, timestamp: int | None = None) -> tuple[dict[str, str], str]:
        """The query string and body WeChat would send for `xml`."""
        ts = str(self.now() if timestamp is None else timestamp)
        nonce = uuid.uuid4().hex[:10]
        params = {"signature": sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce}
        if not self.safe:
            return params, xml
        crypto = WeChatCrypto(self.token, self.aes_key, self.appid)
        envelope = crypto.encrypt_message(xml, nonce, ts)
        fields = xmltodict.parse(envelope)["xml"]
        params.update(encrypt_type="aes", msg_signature=fields["MsgSignature"])
        body = _xml({"ToUserName": ACCOUNT, "Encrypt": fields["Encrypt"]})
        return params, body

    def post(self, xml: str, *, timestamp: int | None = None) -> httpx.Response:
        params, body = self.call(xml, timestamp=timestamp)
        response: httpx.Response = self.client.post("/wechat", params=params, content=body.encode())
        self.sent.append(response)
        return response

    def say(self, xml: str) -> str | None:
        """Send and return the reply's text (None for `success`), checked with wechatpy."""
        response = self.post(xml)
        assert response.status_code == 200, response.text
        return read_reply(response.text, safe=self.safe)


def read_reply(body: str, *, safe: bool, aes_key: str = AES_KEY) -> str | None:
    """Our reply as WeChat reads it: decrypted and signature-checked by wechatpy in safe mode,
    then parsed; the text content, or None for `success`."""
    if body == "success":
        return None
    xml = body
    if safe:
        envelope = xmltodict.parse(body)["xml"]
        crypto = WeChatCrypto(TOKEN, aes_key, APPID)
        xml = crypto.decrypt_message(
            body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
        )
    message = parse_message(xml)
    assert message.type == "text", xml
    assert message.target  # ToUserName: the resident
    return str(message.content)


CASE_NO = re.compile(r"案件编号：(\S+?)。")


def case_no_in(reply: str | None) -> str:
    """The case number a "filed" reply carries."""
    assert reply is not None
    found = CASE_NO.search(reply)
    assert found, reply
    return found.group(1)
