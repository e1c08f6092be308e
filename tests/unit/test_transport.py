"""``ledger serve``'s connections answer without Nagle's delay with any number of workers
(api/transport.py): uvicorn binds the listener of several workers itself, and the
connections accepted from it lost ``TCP_NODELAY`` (uvicorn issue #3149), adding a delayed
ACK (about 40 ms) to every keep-alive request after the first."""

from __future__ import annotations

import asyncio
import socket

from uvicorn import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from api.transport import NoDelayH11Protocol


async def nodelay_of_accepted(protocol: type[H11Protocol]) -> int:
    """TCP_NODELAY of a connection accepted from a listener bound as uvicorn binds the one
    its workers share (``Config.bind_socket``), served by ``protocol``."""
    config = Config(app=lambda scope, receive, send: None, host="127.0.0.1", port=0)
    config.load()
    state = ServerState()
    listener = config.bind_socket()
    server = await asyncio.get_running_loop().create_server(
        lambda: protocol(config, state, {}), sock=listener
    )
    try:
        reader, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        while not state.connections:
            await asyncio.sleep(0.01)
        (accepted,) = state.connections
        sock = accepted.transport.get_extra_info("socket")
        found = int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        await writer.wait_closed()
        return found
    finally:
        server.close()


def test_a_connection_to_a_listener_bound_for_workers_answers_without_nagle() -> None:
    assert asyncio.run(asyncio.wait_for(nodelay_of_accepted(NoDelayH11Protocol), 10)) == 1


def test_uvicorn_s_own_protocol_still_loses_nodelay_there_which_is_why_ours_exists() -> None:
    """When uvicorn fixes its listener this fails: then api/transport.py can go."""
    assert asyncio.run(asyncio.wait_for(nodelay_of_accepted(H11Protocol), 10)) == 0
