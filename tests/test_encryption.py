"""netwatch.encryption: AES-256-GCM values that name their format; keys as base64; nothing secret in errors.

A wrong key, a changed byte anywhere (nonce, ciphertext, tag, the version label) and a cut value must
all be refused, never decrypted to something else; no refusal may show the key, the value or the
plaintext.
"""

from __future__ import annotations

import base64

import pytest

from netwatch.encryption import (
    KEY_BYTES,
    NONCE_BYTES,
    PREFIX,
    TAG_BYTES,
    EncryptionError,
    decrypt,
    encrypt,
    generate_key,
    parse_key,
    value_problem,
)

KEY_TEXT = base64.b64encode(bytes(range(32))).decode()
KEY = parse_key(KEY_TEXT)
OTHER_KEY = parse_key(base64.b64encode(bytes(range(1, 33))).decode())
PLAINTEXT = "s3cret-Passw0rd-of-the-shop"
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
WRONG_KEY_REASON = ("does not decrypt with this key: the key is not the one it was encrypted with, or the value was "
                    "changed or cut")


def refusal(call: object, *args: object) -> str:
    """The reason of the EncryptionError `call(*args)` raises; it never holds the key, value or plaintext."""
    with pytest.raises(EncryptionError) as caught:
        call(*args)  # type: ignore[operator]
    reason = caught.value.reason
    for secret in (KEY_TEXT, PLAINTEXT, *(str(arg) for arg in args if isinstance(arg, str) and len(arg) > 12)):
        assert secret not in reason
    assert "\n" not in reason
    return reason


def body(value: str) -> bytes:
    text = value.removeprefix(PREFIX)
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pack(raw: bytes) -> str:
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_value_decrypts_to_what_was_encrypted() -> None:
    value = encrypt(PLAINTEXT, KEY)

    assert value.startswith("nwenc:v1:")
    assert decrypt(value, KEY) == PLAINTEXT
    assert value_problem(value) is None


@pytest.mark.parametrize("plaintext", ["p", "pässwörd-ünïcode-🔑", "x" * 5000, "with spaces and : colons"])
def test_any_text_survives_the_round_trip(plaintext: str) -> None:
    assert decrypt(encrypt(plaintext, KEY), KEY) == plaintext


def test_the_value_is_nonce_ciphertext_and_tag_in_unpadded_base64url() -> None:
    value = encrypt(PLAINTEXT, KEY)

    assert "=" not in value and "+" not in value and "/" not in value
    assert len(body(value)) == NONCE_BYTES + len(PLAINTEXT.encode()) + TAG_BYTES


def test_each_encryption_has_a_fresh_nonce() -> None:
    values = {encrypt(PLAINTEXT, KEY) for _ in range(50)}

    assert len(values) == 50
    assert len({body(value)[:NONCE_BYTES] for value in values}) == 50


def test_an_empty_secret_is_not_encrypted() -> None:
    assert refusal(encrypt, "", KEY) == "the secret is empty"


def test_a_wrong_key_is_refused() -> None:
    assert refusal(decrypt, encrypt(PLAINTEXT, KEY), OTHER_KEY) == WRONG_KEY_REASON


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_a_changed_byte_anywhere_is_refused(where: str) -> None:
    raw = bytearray(body(encrypt(PLAINTEXT, KEY)))
    position = {"nonce": 3, "ciphertext": NONCE_BYTES + 2, "tag": len(raw) - 1}[where]
    raw[position] ^= 0x01

    assert refusal(decrypt, pack(bytes(raw)), KEY) == WRONG_KEY_REASON


def test_every_single_character_change_is_refused() -> None:
    value = encrypt(PLAINTEXT, KEY)
    alphabet = "AZaz09-_"
    for index in range(len(PREFIX), len(value)):
        replacement = next(char for char in alphabet if char != value[index])
        changed = value[:index] + replacement + value[index + 1:]
        with pytest.raises(EncryptionError):
            decrypt(changed, KEY)


def test_a_value_relabelled_as_another_version_is_refused() -> None:
    value = encrypt(PLAINTEXT, KEY)

    assert "format version" in refusal(decrypt, "nwenc:v2:" + value.removeprefix(PREFIX), KEY)


@pytest.mark.parametrize("keep", [1, 10, 20, 37, 38, -1, -4])
def test_a_cut_value_is_refused(keep: int) -> None:
    value = encrypt(PLAINTEXT, KEY)
    cut = value[: len(PREFIX) + keep] if keep > 0 else value[:keep]

    reason = refusal(decrypt, cut, KEY)
    assert reason in (WRONG_KEY_REASON, "is too short to hold a secret (was it cut?)",
                      "is not unpadded base64url after its prefix (was it cut or changed?)")


def test_a_value_of_nonce_and_tag_only_is_too_short() -> None:
    assert refusal(decrypt, pack(bytes(NONCE_BYTES + TAG_BYTES)), KEY) == "is too short to hold a secret (was it cut?)"


@pytest.mark.parametrize(("value", "reason"), [
    ("hunter2-plain-password", "is not an encrypted value (one starts with nwenc:v1:; `netwatch secret encrypt` "
                               "makes it)"),
    ("nwenc:v7:abcd", "is of a format version this netwatch does not know (it reads nwenc:v1:)"),
    ("nwenc:v1:not base64!", "is not unpadded base64url after its prefix (was it cut or changed?)"),
    ("nwenc:v1:abc=", "is not unpadded base64url after its prefix (was it cut or changed?)"),
    ("nwenc:v1:abcde", "is not unpadded base64url after its prefix (was it cut or changed?)"),
    ("nwenc:v1:", "is too short to hold a secret (was it cut?)"),
])
def test_what_is_no_value_is_named_without_a_key(value: str, reason: str) -> None:
    assert value_problem(value) == reason
    assert refusal(decrypt, value, KEY) == reason


def test_a_last_character_with_unused_bits_set_is_refused() -> None:
    """Another character with the same used bits would decode alike: only the canonical one passes."""
    value = encrypt("123456789", KEY)  # 12 + 9 + 16 = 37 bytes: the last of 50 characters carries 4 unused bits
    twin = value[:-1] + URLSAFE[URLSAFE.index(value[-1]) ^ 0b0001]

    assert body(twin) == body(value)
    assert value_problem(twin) == "is not unpadded base64url after its prefix (was it cut or changed?)"


def test_a_generated_key_is_32_random_bytes_in_base64() -> None:
    keys = {generate_key() for _ in range(20)}

    assert len(keys) == 20
    for key in keys:
        assert len(key) == 44 and len(base64.b64decode(key, validate=True)) == KEY_BYTES
        assert parse_key(key) == base64.b64decode(key)


def test_a_key_may_have_whitespace_around_it() -> None:
    assert parse_key(f"  {KEY_TEXT}\n") == KEY


@pytest.mark.parametrize(("text", "reason"), [
    ("", "is empty"),
    ("  \n", "is empty"),
    ("not*base64", "is not base64"),
    (KEY_TEXT[:-1], "is not base64"),
    (base64.urlsafe_b64encode(b"\xfb" * 32).decode(), "is not base64"),
    (base64.b64encode(bytes(16)).decode(), "is 16 bytes, not 32"),
    (base64.b64encode(bytes(31)).decode(), "is 31 bytes, not 32"),
    (base64.b64encode(bytes(33)).decode(), "is 33 bytes, not 32"),
    ("correct horse battery staple", "is not base64"),
])
def test_what_is_no_key_is_refused(text: str, reason: str) -> None:
    message = refusal(parse_key, text)

    assert message == f"{reason}: a key is 32 random bytes in base64 (`netwatch secret generate-key` makes one)"
