"""A classic BPF program (SO_ATTACH_FILTER) for a raw ICMP socket: echo replies to other identifiers dropped.

Every raw ICMP socket on a host is handed a copy of every echo reply; a sweep beside another
pinger (fping, another netwatch) would wake up and parse each of that one's replies too. The
program runs in the kernel on each packet queued to the socket and drops an echo reply whose
identifier is not the sweep's; anything else (destination unreachables, what ICMP_FILTER let
through) passes. A raw IPv4 socket's packets start with the IP header, whose length the program
reads; a raw ICMPv6 socket's start with the ICMPv6 header. Pure: it only builds the instructions.
"""

from __future__ import annotations

import struct

INSTRUCTION = struct.Struct("=HBBI")  # struct sock_filter: code, jump if true, jump if false, k

# Instruction codes of linux/filter.h.
_LDX_MSH = 0xB1  # BPF_LDX | BPF_B | BPF_MSH: x = 4 * (packet[k] & 0x0F), an IPv4 header's length
_LDX_IMM = 0x01  # BPF_LDX | BPF_W | BPF_IMM: x = k
_LDB_IND = 0x50  # BPF_LD | BPF_B | BPF_IND: a = packet[x + k]
_LDH_IND = 0x48  # BPF_LD | BPF_H | BPF_IND: a = 16 bits at x + k, network byte order
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET = 0x06  # BPF_RET | BPF_K: keep at most k bytes of the packet (0: drop it)

_WHOLE = 0xFFFFFFFF
_IDENTIFIER_AT = 4  # in the ICMP header: type, code, checksum, then the identifier


def echo_reply_filter(reply_type: int, identifier: int, ip_header: bool) -> bytes:
    """The program, as SO_ATTACH_FILTER's array of struct sock_filter, for one socket.

    `reply_type`: the echo reply's ICMP type (0, or 129 for ICMPv6); `ip_header`: whether the
    socket's packets start with an IPv4 header (a raw IPv4 socket).
    """
    if not (0 <= reply_type <= 0xFF and 0 <= identifier <= 0xFFFF):
        raise ValueError("invalid echo reply filter")
    program = [
        (_LDX_MSH, 0, 0, 0) if ip_header else (_LDX_IMM, 0, 0, 0),  # x: where the ICMP header starts
        (_LDB_IND, 0, 0, 0),
        (_JEQ, 0, 2, reply_type),  # not an echo reply: keep
        (_LDH_IND, 0, 0, _IDENTIFIER_AT),
        (_JEQ, 0, 1, identifier),
        (_RET, 0, 0, _WHOLE),
        (_RET, 0, 0, 0),
    ]
    return b"".join(INSTRUCTION.pack(*instruction) for instruction in program)
