"""The echo requests of one sweep, from one template per socket: only the packet index changes.

A request is the 8-byte ICMP header (type, code, checksum, identifier, sequence) and a 12-byte
payload (the sweep's token, the 32-bit packet index), all in network byte order; the sequence is
the index's low 16 bits. The checksum (RFC 1071) is kept incrementally, as RFC 1624 describes:
the sum of the words that never change is taken once, and each request adds only its three
changing words (the sequence and the index's two halves). Pure arithmetic, no I/O.
"""

from __future__ import annotations

import struct

REQUEST = struct.Struct("!BBHHH8sI")  # type, code, checksum, identifier, sequence, token, packet index
TOKEN_SIZE = 8
MAX_INDEX = 0xFFFFFFFF


class EchoTemplate:
    """Builds the request of any packet index for one ICMP type, identifier and token.

    `checksummed`: whether the checksum is ours to write (a raw IPv4 socket); the kernel writes
    it on datagram sockets and for ICMPv6, so it stays zero there.
    """

    __slots__ = ("_constant_sum", "checksummed", "identifier", "kind", "token")

    def __init__(self, kind: int, identifier: int, token: bytes, checksummed: bool) -> None:
        if not (0 <= kind <= 0xFF and 0 <= identifier <= 0xFFFF and len(token) == TOKEN_SIZE):
            raise ValueError("invalid echo template")
        self.kind = kind
        self.identifier = identifier
        self.token = token
        self.checksummed = checksummed
        constant = REQUEST.pack(kind, 0, 0, identifier, 0, token, 0)
        self._constant_sum = sum(struct.unpack(f"!{len(constant) // 2}H", constant))

    def request(self, index: int) -> bytes:
        """The echo request of packet `index` (0 <= index <= MAX_INDEX), ready to send."""
        low = index & 0xFFFF
        checksum = 0
        if self.checksummed:
            total = self._constant_sum + low + low + (index >> 16)  # the sequence, then the index's two halves
            total = (total & 0xFFFF) + (total >> 16)
            checksum = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
        return REQUEST.pack(self.kind, 0, checksum, self.identifier, low, self.token, index)
