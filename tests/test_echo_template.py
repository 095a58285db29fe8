"""The incremental checksum of netwatch/probes/echo.py against a full RFC 1071 checksum of the same bytes."""

from __future__ import annotations

import struct

import pytest

from netwatch.probes.echo import MAX_INDEX, REQUEST, EchoTemplate

INDEXES = [0, 1, 0xFFFE, 0xFFFF, 0x10000, 0x1FFFF, 0x7FFF7FFF, 0xFFFF0000, 0xFFFEFFFF, MAX_INDEX - 1, MAX_INDEX,
           *range(0, 5_000_000, 4_999), *range(0xFFFF - 300, 0xFFFF + 300)]
TOKENS = [bytes(8), b"\xff" * 8, b"\x12\x34\x56\x78\x9a\xbc\xde\xf0"]


def full_checksum(packet: bytes) -> int:
    """RFC 1071 over the whole packet, its checksum field taken as zero."""
    words = struct.unpack(f"!{len(packet) // 2}H", packet[:2] + b"\0\0" + packet[4:])
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@pytest.mark.parametrize("token", TOKENS, ids=lambda token: token.hex())
# (8, 30722) with an all-ones token and index 0x7FFF7FFF carries twice when the sum is folded.
@pytest.mark.parametrize(("kind", "identifier"), [(8, 0), (8, 0xFFFF), (8, 0x1234), (8, 30722), (128, 0xFFFE)])
def test_the_incremental_checksum_equals_a_full_one(kind: int, identifier: int, token: bytes) -> None:
    template = EchoTemplate(kind, identifier, token, checksummed=True)

    for index in INDEXES:
        packet = template.request(index)
        fields = REQUEST.unpack(packet)
        assert fields == (kind, 0, full_checksum(packet), identifier, index & 0xFFFF, token, index), index


def test_a_packet_with_its_checksum_sums_to_all_ones() -> None:
    template = EchoTemplate(8, 0xBEEF, b"netwatch", checksummed=True)

    for index in INDEXES:
        packet = template.request(index)
        total = sum(struct.unpack(f"!{len(packet) // 2}H", packet))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        assert total == 0xFFFF, index


def test_the_checksum_stays_zero_where_the_kernel_writes_it() -> None:
    template = EchoTemplate(8, 7, bytes(8), checksummed=False)

    assert {REQUEST.unpack(template.request(index))[2] for index in INDEXES} == {0}
    assert REQUEST.unpack(template.request(0x10001))[4] == 1  # the sequence wraps with the index's low bits


@pytest.mark.parametrize(("kind", "identifier", "token"), [(256, 0, bytes(8)), (8, 0x10000, bytes(8)),
                                                           (8, 0, bytes(7))])
def test_a_template_out_of_range_is_refused(kind: int, identifier: int, token: bytes) -> None:
    with pytest.raises(ValueError, match="invalid echo template"):
        EchoTemplate(kind, identifier, token, checksummed=True)
