"""WeChat XML: any body is a message or a `wechat_message_invalid`, never another failure; any
reply text gives XML that wechatpy reads back (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy import parse_message

from channels.wechat import messages
from core.errors import WechatMessageInvalid

INBOUND = messages.Inbound(
    account="gh_0123456789ab",
    openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
    create_time=1_764_000_000,
    msg_type="text",
    msg_id="1",
    fields={},
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=200).map(lambda t: f"<xml>{t}</xml>".encode()))
def test_any_body_is_fields_or_refused(body: bytes) -> None:
    try:
        fields = messages.parse_fields(body)
    except WechatMessageInvalid:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_reply_text_is_well_formed_xml(content: str) -> None:
    xml = messages.text_reply(INBOUND, content, now=1_764_000_001)
    reply = parse_message(xml)
    assert reply.type == "text"
    assert reply.target == INBOUND.openid
    # XML reads a carriage return as a line feed; wechatpy strips the ends.
    expected = messages.xml_text(content).replace("\r\n", "\n").replace("\r", "\n").strip()
    assert (reply.content or "") == expected


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE xml [<!ENTITY a 'x'>]><xml><a>&a;</a></xml>",
        b"<?xml version='1.0'?><!DOCTYPE xml SYSTEM 'http://127.0.0.1:9/dtd'><xml/>",
        b"<root><FromUserName>x</FromUserName></root>",
        b"<xml><FromUserName>o6</FromUserName>",
    ],
    ids=["entity", "external-dtd", "other-root", "truncated"],
)
def test_hostile_or_broken_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(WechatMessageInvalid):
        messages.inbound(messages.parse_fields(body))
