"""Serving an HTTP door (the API, Web-to-Case) on the daemon's own event loop (uvicorn),
beside the SMTP listener, each on an address of its own.

The socket is bound here, so a port in use is the daemon's clear start-up error rather
than uvicorn's exit; the daemon keeps its own signal handling (uvicorn's is switched
off) and stops the server when it stops. X-Forwarded-For is believed only from the
proxies named (uvicorn's default would trust it from 127.0.0.1, so any local client
could claim any address).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

STOP_SECONDS = 10  # seconds requests under way get to finish


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: SIGTERM and SIGINT are the daemon's."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """One HTTP server for ``api`` on ``host``:``port`` (0: a free port); ``name`` names
    its task; ``trusted_proxies`` (addresses or networks) may say who the client is."""

    def __init__(self, api: FastAPI, host: str, port: int, *, name: str = "api",
                 trusted_proxies: Sequence[str] = ()) -> None:
        self.api = api
        self.host = host
        self.port = port
        self.name = name
        self.trusted_proxies = list(trusted_proxies)
        self.server: _Server | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Bind (OSError if the address cannot be had) and serve in the background."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off (TCP_NODELAY)
        # only on sockets whose proto says TCP, and with it on, the body of each answer
        # after the first on a kept-alive connection waited ~40 ms for the client's
        # delayed ACK of the headers (bench/README.md, the API rows).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.api, log_config=None, access_log=False,
                                lifespan="off", server_header=False,
                                timeout_graceful_shutdown=STOP_SECONDS,
                                proxy_headers=bool(self.trusted_proxies),
                                forwarded_allow_ips=self.trusted_proxies or None)
        self.server = _Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]), name=self.name)

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
