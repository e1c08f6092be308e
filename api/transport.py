"""The HTTP/1.1 protocol ``ledger serve`` gives uvicorn: its h11 protocol with ``TCP_NODELAY``
set on every accepted TCP connection, however many workers there are.

With ``--workers`` above 1, uvicorn binds the listening socket itself, leaving its protocol
number at 0; the sockets accepted from it inherit that, and asyncio only switches Nagle's
algorithm off for a socket whose protocol reads ``IPPROTO_TCP`` (uvicorn issue #3149, open).
A response then sits in the kernel until the client's delayed ACK, about 40 ms on Linux, on
every keep-alive request after the first: measured here, one client's request took 48 ms
with two workers against 4 ms with one, while the server spent 5 ms on it.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; each TCP connection it is given answers without Nagle's delay
    (``TCP_NODELAY``: Nagle, RFC 896; delayed ACK, RFC 1122 section 4.2.3.2)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in TCP_FAMILIES:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
