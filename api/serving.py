"""`sitrep serve` under uvicorn: the port bound before anything starts, then the app, then one line.

The socket is bound first, so a port in use is one clear error before the database is touched;
"serving" is said only once the app's startup (pool, key cache, live hub) has finished on the
bound socket (with several workers: once the socket is bound and the workers start).
"""

from __future__ import annotations

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
