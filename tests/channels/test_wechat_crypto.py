"""Our safe-mode crypto against wechatpy's, both ways, for any text (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.crypto import PrpCrypto

from channels.wechat import crypto
from tests.channels import wechat_peer as wx

KEY = crypto.aes_key(wx.AES_KEY)
# Text XML can carry (what a message or reply holds).
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300
)


@settings(max_examples=60, deadline=None)
@given(TEXT)
def test_wechatpy_opens_what_we_seal(body: str) -> None:
    sealed = crypto.encrypt(body, key=KEY, appid=wx.APPID)
    assert PrpCrypto(KEY).decrypt(sealed, wx.APPID) == body


@settings(max_examples=60, deadline=None)
@given(TEXT)
def test_we_open_what_wechatpy_seals(body: str) -> None:
    sealed = PrpCrypto(KEY).encrypt(body, wx.APPID).decode()
    opened = crypto.open_sealed(sealed, keys=[KEY], appid=wx.APPID)
    assert opened == crypto.Decrypted(xml=body, appid=wx.APPID)


def test_another_key_opens_nothing_and_another_appid_is_reported() -> None:
    sealed = PrpCrypto(KEY).encrypt("<xml/>", "wx-other").decode()
    other = crypto.aes_key(wx.OLD_AES_KEY)
    assert crypto.open_sealed(sealed, keys=[other], appid=wx.APPID) is None
    opened = crypto.open_sealed(sealed, keys=[other, KEY], appid=wx.APPID)
    assert opened is not None
    assert opened.appid == "wx-other"


def test_signature_is_wechats_and_compared_whole() -> None:
    expected = wx.sign(wx.TOKEN, "1700000000", "nonce", "enc")
    assert crypto.signature(wx.TOKEN, "1700000000", "nonce", "enc") == expected
    assert crypto.signature_matches(expected, expected.upper())
    assert not crypto.signature_matches(expected, expected[:-1])
    assert not crypto.signature_matches(expected, None)
