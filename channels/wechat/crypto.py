"""WeChat's webhook signatures and safe-mode (安全模式) message encryption.

Signature: sha1 of the sorted strings joined (token, timestamp, nonce; safe mode adds the
`Encrypt` text), compared in constant time. Safe mode: AES-256-CBC with key =
b64decode(EncodingAESKey + "="), IV = key[:16], PKCS#7 padding to 32-byte blocks, plaintext =
16 random bytes + 4-byte big-endian length + XML + AppID.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16
_RANDOM_PREFIX = 16


def signature(*parts: str) -> str:
    """sha1 over the parts sorted and joined, as WeChat signs its calls (lowercase hex)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_matches(expected: str, given: str | None) -> bool:
    """Constant-time compare (a timing oracle must not reveal the signature byte by byte)."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte key from the 43-character EncodingAESKey of the account's settings."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("EncodingAESKey is not base64") from None
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes (43 characters)")
    return key


def _cipher(key: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def encrypt(xml: str, *, key: bytes, appid: str, random_prefix: bytes | None = None) -> str:
    """The base64 `Encrypt` text of a reply."""
    body = xml.encode()
    prefix = random_prefix if random_prefix is not None else os.urandom(_RANDOM_PREFIX)
    plain = prefix + struct.pack(">I", len(body)) + body + appid.encode()
    pad = BLOCK - len(plain) % BLOCK
    plain += bytes([pad]) * pad
    encryptor = _cipher(key).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


@dataclass(frozen=True)
class Decrypted:
    xml: str
    appid: str


def decrypt(encrypted: str, *, key: bytes) -> Decrypted | None:
    """The XML and the AppID sealed in an `Encrypt` text, or None when it does not decrypt to
    a well-formed plaintext with this key (bad base64, length, padding or UTF-8)."""
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw or len(raw) % BLOCK:
        return None
    decryptor = _cipher(key).decryptor()
    plain = decryptor.update(raw) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
        return None
    content = plain[_RANDOM_PREFIX:-pad]
    if len(content) < 4:
        return None
    (length,) = struct.unpack(">I", content[:4])
    if length > len(content) - 4:
        return None
    try:
        return Decrypted(xml=content[4 : 4 + length].decode(), appid=content[4 + length :].decode())
    except UnicodeDecodeError:
        return None


def open_sealed(encrypted: str, *, keys: list[bytes], appid: str) -> Decrypted | None:
    """Decrypt with the current key, then the previous one (a rotation in progress).

    Returns the first plaintext sealed for `appid`; a plaintext that decrypts but names another
    AppID is returned as is (the caller refuses it); None when no key opens it."""
    other: Decrypted | None = None
    for key in keys:
        found = decrypt(encrypted, key=key)
        if found is None:
            continue
        if hmac.compare_digest(found.appid.encode(), appid.encode()):
            return found
        other = other or found
    return other
