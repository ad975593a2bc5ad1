"""`sitrep serve` under uvicorn: the port bound before anything starts, then the app, then one line.

The socket is bound first, so a port in use is one clear error before the database is touched;
"serving" is said only once the app's startup (pool, key cache, live hub) has finished on the
bound socket (with several workers: once the socket is bound and the workers start).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

log = logging.getLogger("sitrep.serve")

_QUEUED_MAX = 4096  # connections taken from a listening socket's queue at shutdown, at most (its backlog is 2048)


class BindError(Exception):
    """The address cannot be listened on; the message says why in one line."""


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restarts reuse a port in TIME_WAIT
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(f"port {port} on {host} is in use; stop what holds it or choose another --port") from exc
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    except (OverflowError, socket.gaierror) as exc:
        sock.close()
        raise BindError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.set_inheritable(True)  # workers inherit it
    return sock


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._accept_queued(sockets or [])
        await super().shutdown(sockets=sockets)  # closes the listening socket first, with no await before

    async def _accept_queued(self, sockets: list[socket.socket]) -> None:
        """Take the connections the kernel has queued on the listening socket before it closes.

        A client's connect() succeeds once the kernel has queued the connection, and it sends its
        request; closing the listening socket resets every connection still queued, so that client
        reads a reset instead of an answer (measured: 16 clients each opening a connection per request,
        SIGTERM, 10 resets in 20 stops). Taken here, each is one of the server's connections when
        the drain starts, and its request is answered (api/server.py, SITREP_DRAIN_GRACE). What
        arrives after the last empty accept() is refused once the socket is closed, as a client
        expects of a server that has stopped.
        """
        loop = asyncio.get_running_loop()
        config, state = self.config, self.server_state

        def protocol() -> asyncio.Protocol:
            made: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=state, app_state=self.lifespan.state, _loop=loop
            )
            return made

        for listening in sockets:
            listening.setblocking(False)  # as the loop has it already: accept() must never wait
            for _ in range(_QUEUED_MAX):
                try:
                    conn, _ = listening.accept()
                except OSError:  # BlockingIOError: none left (or the socket is gone)
                    break
                conn.setblocking(False)
                try:
                    await loop.connect_accepted_socket(protocol, conn)
                except OSError:
                    conn.close()


def _drained(signum: int, frame: FrameType | None) -> None:
    """The signal uvicorn re-raises after its graceful shutdown: already handled."""


def run(
    sock: socket.socket,
    *,
    workers: int,
    log_config: dict[str, Any],
    access_log: bool,
    ready: str,
    shutdown_timeout: int,
) -> bool:
    """Serve the app on `sock` until stopped; False when it failed to start.

    SIGTERM (or SIGINT) drains the requests in flight for at most `shutdown_timeout` seconds,
    then the process exits 0: uvicorn raises the signal again against the handler that was
    there before it, and with Python's default a clean stop would exit -15.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _drained)
    config = uvicorn.Config(
        "api.asgi:app",
        workers=workers,
        loop="uvloop",
        http="api.server:BoundedHttpToolsProtocol",  # httptools, with header and send timeouts
        log_config=log_config,
        log_level=None,  # the levels are in log_config
        access_log=access_log,
        timeout_graceful_shutdown=shutdown_timeout,
    )
    if workers > 1:
        log.info(ready)
        Multiprocess(config, sockets=[sock]).run()
        return True
    server = _Server(config, lambda: log.info(ready))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has shut down cleanly already
        server.run(sockets=[sock])
    return server.started
