"""A real server process for tests that talk HTTP over a socket: uvicorn on 127.0.0.1, a free port.

The listening socket is bound here and handed to uvicorn (`--fd`), so there is no race for
the port; the process gets the test's database and a fixed secret, and is stopped at exit.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def live_server(dsn: str, data_dir: Path, log: Path | None = None, **env: str) -> Iterator[str]:
    """Serve the app on `dsn`; yield its base URL once /health answers. `log`: where its stderr goes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    environment = {
        **os.environ,
        "DATABASE_URL": dsn,
        "SITREP_DATA_DIR": str(data_dir),
        "SITREP_SECRET": "live-server-test-secret",
        "SITREP_LOAD_SAMPLE": "false",
        **env,
    }
    command = [sys.executable, "-m", "uvicorn", "api.asgi:app", "--fd", str(sock.fileno()), "--log-level", "warning"]
    stderr = log.open("wb") if log is not None else None
    process = subprocess.Popen(command, cwd=REPO, env=environment, pass_fds=[sock.fileno()], stderr=stderr)
    sock.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer /health within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if stderr is not None:
            stderr.close()


@asynccontextmanager
async def stalled_export(base: str) -> AsyncIterator[bytes]:
    """An NDJSON export whose client reads the head and then stops reading (a 4 kB receive window,
    so the server blocks mid-export whatever the socket buffer sizes); yields the head."""
    loop = asyncio.get_running_loop()
    host, port = base.removeprefix("http://").split(":")
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        client.setblocking(False)
        await loop.sock_connect(client, (host, int(port)))
        await loop.sock_sendall(client, f"GET /v1/entries?format=ndjson HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        yield await loop.sock_recv(client, 1024)
    finally:
        client.close()
