"""`sitrep serve` against clients that hold connections: half-sent request headers are cut after
the header timeout, and an SSE client that reads nothing is cut after the send timeout (issue #12,
defects 8a and 8b)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import asyncpg
import pytest

from tests.api.test_serve import serving
from tests.db import factories as f


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closes `sock` (reading whatever it sent), None if it stays open."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(1 << 20) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None


async def test_half_sent_headers_are_cut_after_the_header_timeout(db_dsn: str, tmp_path: Path) -> None:
    async with serving(db_dsn, tmp_path, SITREP_HEADER_TIMEOUT="1") as port:
        held = []
        for partial in (b"", b"GET /v1/entries HTTP/1.1\r\nHost: x\r\n", b"GET /v1/ent"):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(partial)
            held.append(sock)
        for sock in held:
            took = await asyncio.to_thread(_closed_within, sock, 5)
            assert took is not None, "a half-sent request was still held after 5 s"
            sock.close()
        # a whole request is unaffected
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(100).startswith(b"HTTP/1.1 200")


async def test_an_sse_client_that_reads_nothing_is_cut_off(
    db_dsn: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    blog = await f.blog(conn, "day-one")
    async with serving(db_dsn, tmp_path, SITREP_SEND_TIMEOUT="1") as port:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server's buffer fills
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /v1/stream/entries HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.5)
        big = ["x" * 100_000] * 2
        for i in range(80):  # ~16 MB of events, more than every buffer on the way holds
            await f.entry(conn, blog, f.at(i), headline=f"Update {i}", body=big)
        await asyncio.sleep(3)  # the send timeout (1 s) has long passed with nothing read
        took = await asyncio.to_thread(_closed_within, sock, 20)
        sock.close()
        assert took is not None, "the server still held a stream nobody read"


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
