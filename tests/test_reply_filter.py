"""The BPF program of netwatch.probes.replyfilter as plain data (tests/test_icmp.py attaches it to real sockets)."""

from __future__ import annotations

import pytest

from netwatch.probes.replyfilter import INSTRUCTION, echo_reply_filter


@pytest.mark.parametrize("ip_header", [True, False])
def test_the_program_compares_the_identifier_and_drops_what_differs(ip_header: bool) -> None:
    program = echo_reply_filter(0, 0xBEEF, ip_header)

    instructions = [INSTRUCTION.unpack_from(program, at) for at in range(0, len(program), INSTRUCTION.size)]
    assert len(program) == len(instructions) * INSTRUCTION.size
    assert (0x15, 0, 1, 0xBEEF) in instructions
    assert instructions[-2:] == [(0x06, 0, 0, 0xFFFFFFFF), (0x06, 0, 0, 0)]


@pytest.mark.parametrize(("reply_type", "identifier"), [(-1, 0), (256, 0), (0, -1), (0, 0x10000)])
def test_impossible_fields_are_refused(reply_type: int, identifier: int) -> None:
    with pytest.raises(ValueError, match="invalid echo reply filter"):
        echo_reply_filter(reply_type, identifier, ip_header=True)
