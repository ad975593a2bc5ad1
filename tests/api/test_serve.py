"""`sitrep serve` as an operator runs it: SIGTERM drains what is in flight, then exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=base, timeout=1) as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"sitrep serve exited with {process.returncode}"
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("sitrep serve did not answer /health within 30 s")


@contextlib.asynccontextmanager
async def serving(dsn: str, folder: Path, **env: str) -> AsyncIterator[int]:
    """`sitrep serve` on a free port over `dsn`; yields the port once /health answers."""
    port = _free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": dsn,
        "SITREP_DATA_DIR": str(folder),
        "SITREP_SECRET": "serve-test-secret",
        "SITREP_LOAD_SAMPLE": "false",
        **env,
    }
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    with (folder / "serve.log").open("wb") as stderr:
        process = await asyncio.to_thread(subprocess.Popen, command, cwd=REPO, env=environment, stderr=stderr)
    try:
        await _wait_healthy(f"http://127.0.0.1:{port}", process)
        yield port
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_sigterm_drains_the_request_in_flight_then_exits_0(
    db_dsn: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "SITREP_DATA_DIR": str(tmp_path),
        "SITREP_SECRET": "serve-test-secret",
        "SITREP_LOAD_SAMPLE": "false",
        "SITREP_STATEMENT_TIMEOUT_MS": "20000",
        "SITREP_SHUTDOWN_TIMEOUT": "10",
    }
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = await asyncio.to_thread(subprocess.Popen, command, cwd=REPO, env=env, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_healthy(base, process)
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            async with conn.transaction():
                # the read waits on this lock: it is in flight when the signal comes
                await conn.execute("LOCK TABLE entries IN ACCESS EXCLUSIVE MODE")
                pending = asyncio.create_task(http.get("/v1/entries"))
                await asyncio.sleep(0.5)
                process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                assert process.poll() is None  # still draining
            response = await pending
        assert response.status_code == 200, response.text
        code = await asyncio.to_thread(process.wait, 15)
        assert code == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
