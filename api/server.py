"""The HTTP protocol `sitrep serve` runs: uvicorn's httptools protocol with two more bounds.

uvicorn bounds only the idle time between requests (`timeout_keep_alive`), and only once a first
response is complete: a connection that sends half its headers, or nothing, is kept forever,
and one whose client stops reading holds its response (an SSE stream, an export) forever.

- Header read timeout (SITREP_HEADER_TIMEOUT, default 10 s): from the connection's start, or from
  the first byte of a request, to the end of its headers; past it the connection is closed.
- Send timeout (SITREP_SEND_TIMEOUT, default 30 s): how long the connection's write buffer may
  stay over its high-water mark (the client reads nothing); past it the connection is aborted,
  the response ends (an SSE client resumes with Last-Event-ID when it reads again).
- Drain (SITREP_DRAIN_GRACE, default 1 s): at shutdown uvicorn closes every connection with no
  request under way, a request whose bytes have arrived but are not read yet included: its
  client gets the connection closed with no answer. Here such a connection is kept for the
  grace: a request that arrives on it is answered (then the connection closes); one that stays
  idle is closed when the grace ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from asyncio import TimerHandle
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("sitrep.server")


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout = _seconds("SITREP_HEADER_TIMEOUT", 10.0)
    send_timeout = _seconds("SITREP_SEND_TIMEOUT", 30.0)
    drain_grace = _seconds("SITREP_DRAIN_GRACE", 1.0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers_timer: TimerHandle | None = None
        self._send_timer: TimerHandle | None = None
        self._draining = False

    def shutdown(self) -> None:
        """The server stops: answer what is under way or arrives within the grace, then close."""
        self._draining = True
        if self.cycle is None or self.cycle.response_complete:
            if self.drain_grace <= 0:
                super().shutdown()
                return
            self.loop.call_later(self.drain_grace, self._drain_idle)
        else:
            self.cycle.keep_alive = False

    def _drain_idle(self) -> None:
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_headers()

    def on_headers_complete(self) -> None:
        self._cancel_headers()
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # the last request on this connection

    def handle_websocket_upgrade(self) -> None:
        # the socket's protocol takes the transport over: these timers must not touch it
        self._cancel_headers()
        self._cancel_send()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_headers()
        self._cancel_send()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.send_timeout, self._send_stuck)

    def resume_writing(self) -> None:
        self._cancel_send()
        super().resume_writing()

    # ---- the timers -----------------------------------------------------------------------------

    def _arm_headers(self) -> None:
        if self._headers_timer is None:
            self._headers_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_headers(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _cancel_send(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _headers_late(self) -> None:
        self._headers_timer = None
        if not self.transport.is_closing():
            log.info(
                "closing a connection from %s: no complete request headers within %g s",
                self.client,
                self.header_timeout,
            )
            self.transport.close()

    def _send_stuck(self) -> None:
        self._send_timer = None
        if not self.transport.is_closing():
            log.info("aborting a connection to %s: it read nothing for %g s", self.client, self.send_timeout)
            self.transport.abort()
