"""uvicorn's h11 protocol with the two things the sandbox needs from the socket: TCP_NODELAY (small JSON
answers must not wait on Nagle) and a way to drop a request's connection without answering (fault `drop`),
which ASGI itself cannot express."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import MutableMapping
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol


class SandboxH11Protocol(H11Protocol):
    open_transports: ClassVar[dict[tuple[str, int], asyncio.Transport]] = {}

    # H11Protocol declares BaseTransport; the server always hands it a Transport, whose socket is needed here.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        if self.client:
            self.open_transports[self.client] = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client:
            self.open_transports.pop(self.client, None)
        super().connection_lost(exc)


async def drop_connection(scope: MutableMapping[str, Any]) -> bool:
    """Reset the connection this request came on. False when it is not ours to drop (e.g. an in-process
    test client), so the caller can fail the request another way."""
    client = scope.get("client")
    transport = SandboxH11Protocol.open_transports.get(tuple(client)) if client else None
    if transport is None:
        return False
    transport.abort()
    await asyncio.sleep(0)  # let uvicorn see the disconnect, so it neither answers nor logs
    return True
