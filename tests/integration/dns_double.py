"""Test double for Docker's embedded DNS server (no Docker engine here): answers A queries for
names the test sets (a network alias and the addresses of the containers that carry it), NOERROR
with no answer for other types of a known name, NXDOMAIN otherwise. UDP on loopback, RFC 1035
wire format, as HAProxy's resolvers send it (with or without an EDNS OPT record)."""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading


class DnsDouble:
    def __init__(self, ttl: int = 1, host: str = "127.0.0.1", port: int = 0):
        """On `host`:`port` (a free port by default; a resolver named in resolv.conf is on port 53)."""
        self.ttl = ttl
        self.records: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, port))
        self._running = True
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def set(self, name: str, addresses: list[str]) -> None:
        with self._lock:
            self.records[name.rstrip(".").lower()] = list(addresses)

    def stop(self) -> None:
        self._running = False
        self._socket.close()

    def _serve(self) -> None:
        while self._running:
            try:
                query, client = self._socket.recvfrom(4096)
            except OSError:
                return
            try:
                self._socket.sendto(self._answer(query), client)
            except (OSError, ValueError, IndexError, struct.error):
                continue

    def _answer(self, query: bytes) -> bytes:
        (ident, flags, qdcount) = struct.unpack(">HHH", query[:6])
        labels, offset = [], 12
        while query[offset]:
            length = query[offset]
            labels.append(query[offset + 1: offset + 1 + length].decode("ascii").lower())
            offset += 1 + length
        qtype, _qclass = struct.unpack(">HH", query[offset + 1: offset + 5])
        question = query[12: offset + 5]
        name = ".".join(labels)
        with self._lock:
            addresses = self.records.get(name)
        rd = flags & 0x0100
        if addresses is None:
            header = struct.pack(">HHHHHH", ident, 0x8000 | rd | 0x0080 | 3, 1, 0, 0, 0)  # NXDOMAIN
            return header + question
        answers = b""
        if qtype == 1:  # A
            for address in addresses:
                answers += struct.pack(">HHHIH", 0xC00C, 1, 1, self.ttl, 4) + ipaddress.IPv4Address(address).packed
        count = len(addresses) if qtype == 1 else 0
        header = struct.pack(">HHHHHH", ident, 0x8000 | 0x0400 | rd | 0x0080, 1, count, 0, 0)
        return header + question + answers
