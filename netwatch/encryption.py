"""Secrets encrypted at rest: AES-256-GCM values that name their format, and the key they need.

A key is 32 random bytes written as standard base64 (44 characters, what `netwatch secret
generate-key` and `openssl rand -base64 32` print). A value is `nwenc:v1:` followed by the
unpadded base64url of a fresh 12-byte nonce, the ciphertext and the 16-byte tag; the prefix is the
associated data, so a value cannot be relabelled as another version. GCM authenticates the whole:
a wrong key and a changed or cut value fail alike, and nothing is ever half-decrypted.

No message of an EncryptionError holds the key, the value or the plaintext. cryptography is imported
only to encrypt or decrypt: checking a value's form (every config load) does without it.
"""

from __future__ import annotations

import base64
import os
import re

PREFIX = "nwenc:v1:"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_RULE = f"a key is {KEY_BYTES} random bytes in base64 (`netwatch secret generate-key` makes one)"
_VERSION = re.compile(r"^nwenc:v[0-9]+:")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


class EncryptionError(Exception):
    """What is wrong with a key or an encrypted value, in words that show neither."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def generate_key() -> str:
    """A new random key, as base64 text."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def parse_key(text: str) -> bytes:
    """The key that base64 `text` holds (whitespace around it dropped); EncryptionError when it is none."""
    text = text.strip()
    if not text:
        raise EncryptionError(f"is empty: {KEY_RULE}")
    if not _BASE64.match(text) or len(text) % 4:
        raise EncryptionError(f"is not base64: {KEY_RULE}")
    key = base64.b64decode(text, validate=True)
    if len(key) != KEY_BYTES:
        raise EncryptionError(f"is {len(key)} bytes, not {KEY_BYTES}: {KEY_RULE}")
    return key


def encrypt(plaintext: str, key: bytes) -> str:
    """`plaintext` (not empty) encrypted with `key` under a fresh random nonce, as a `nwenc:v1:` value."""
    if not plaintext:
        raise EncryptionError("the secret is empty")
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), PREFIX.encode("ascii"))
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")


def decrypt(value: str, key: bytes) -> str:
    """The plaintext of `value`; EncryptionError for a wrong key or a value changed, cut or not ours."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = _unpack(value)
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], PREFIX.encode("ascii"))
    except InvalidTag:
        raise EncryptionError("does not decrypt with this key: the key is not the one it was encrypted "
                              "with, or the value was changed or cut") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise EncryptionError("decrypts to bytes that are not UTF-8 text") from None


def value_problem(value: str) -> str | None:
    """What makes `value` no well-formed encrypted value, without a key (None: it may decrypt)."""
    try:
        _unpack(value)
    except EncryptionError as exc:
        return exc.reason
    return None


def _unpack(value: str) -> bytes:
    """Nonce, ciphertext and tag of `value`, checked for form only."""
    if not value.startswith(PREFIX):
        if _VERSION.match(value):
            raise EncryptionError("is of a format version this netwatch does not know (it reads nwenc:v1:)")
        raise EncryptionError(f"is not an encrypted value (one starts with {PREFIX}; `netwatch secret encrypt` "
                              "makes it)")
    body = value[len(PREFIX):]
    if not _BASE64URL.match(body) or len(body) % 4 == 1:
        raise EncryptionError("is not unpadded base64url after its prefix (was it cut or changed?)")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != body:
        # Its last character has bits no byte uses: another character there would decode alike.
        raise EncryptionError("is not unpadded base64url after its prefix (was it cut or changed?)")
    if len(raw) <= NONCE_BYTES + TAG_BYTES:
        raise EncryptionError("is too short to hold a secret (was it cut?)")
    return raw

