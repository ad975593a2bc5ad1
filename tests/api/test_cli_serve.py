"""`sitrep serve` as an operator runs it: a subprocess on a spare port, its exit code and its output."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx

from db import keys as keydb
from db.migrate import migrate
from tests.api.test_cli_import import SITREP
from tests.conftest import REPO, embedded_data_dir

START_TIMEOUT = 30.0  # seconds: migrations on a fresh database and the app's startup


def spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(dsn: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "SITREP_DATA_DIR": str(data_dir),
        "SITREP_SECRET": "serve-test-secret",
        "SITREP_LOAD_SAMPLE": "false",
    }


@contextmanager
def serving(
    dsn: str, data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], list[str], int]]:
    """Start `sitrep serve` and wait for its "serving" line; yield it, its stderr lines so far, its port."""
    port = spare_port()
    proc = subprocess.Popen(
        [str(SITREP), "serve", "--port", str(port), *args],
        env={**_env(dsn, data_dir), **(env or {})},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not any("serving on" in line for line in lines):
            assert time.monotonic() < deadline, f"no 'serving' line within {START_TIMEOUT} s: {lines}"
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if ready:
                line = proc.stderr.readline()
                assert line, f"serve exited ({proc.poll()}): {lines}"
                lines.append(line.rstrip("\n"))
        yield proc, lines, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    return out, err


def test_a_port_in_use_is_one_clear_error_and_exit_code_1(db_dsn: str, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        run = subprocess.run(
            [str(SITREP), "serve", "--port", str(port)],
            env=_env(db_dsn, tmp_path),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert f"port {port} on 127.0.0.1 is in use" in lines[0]
    assert "serving" not in run.stderr
    assert time.monotonic() - started < 10  # refused before any database work


def test_serving_is_said_once_it_answers_and_the_access_log_is_off_by_default(db_dsn: str, tmp_path: Path) -> None:
    with serving(db_dsn, tmp_path) as (proc, lines, port):
        assert lines[-1] == f"sitrep serving on http://127.0.0.1:{port} (docs at /docs, GraphQL at /graphql)"
        # the moment it says so, it answers
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/v1/entries", timeout=5).status_code == 200
        out, err = _stop(proc)
    assert out == ""  # no access log unless asked
    assert "Traceback" not in err


def test_json_logs_with_the_access_log_mask_stream_tokens(db_dsn: str, tmp_path: Path) -> None:
    with serving(db_dsn, tmp_path, "--access-log", "--log-format", "json") as (proc, lines, port):
        said = [json.loads(line) for line in lines]
        assert said[-1]["logger"] == "sitrep.serve"
        assert said[-1]["message"].startswith("sitrep serving on")
        assert said[-1]["time"].endswith("Z")
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/v1/entries", params={"limit": "1"}, timeout=5).status_code == 200
        httpx.get(f"{base}/v1/stream/entries", params={"token": "st_do-not-log-me"}, timeout=5)
        time.sleep(0.3)
        out, err = _stop(proc)
    access = [json.loads(line) for line in out.splitlines()]
    assert {"method": "GET", "path": "/v1/entries?limit=1", "status": 200}.items() <= access[0].items()
    assert access[0]["logger"] == "uvicorn.access"
    assert "do-not-log-me" not in out
    assert access[1]["path"] == "/v1/stream/entries?token=…"
    for line in err.splitlines():
        json.loads(line)  # everything on stderr is JSON too


def test_serve_options_have_help_text(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(SITREP), "serve", "--help"], capture_output=True, text=True, timeout=30, check=True, cwd=REPO
    )
    for option, words in {
        "--host": "Address to listen on",
        "--port": "TCP port",
        "--workers": "processes",
        "--access-log / --no-access-log": "one line per request",
        "--log-format [text|json]": "JSON object a line",
    }.items():
        assert option in run.stdout, option
        after = run.stdout.split(option, 1)[1]
        assert words in " ".join(after.split()[:40]), option


async def test_a_browser_opens_a_stream_with_a_token_and_it_ends_when_the_key_is_revoked(
    db_dsn: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        await migrate(conn)
        _, key = await keydb.create_key(conn, "serve-test-secret", name="browser", scopes=["read"], rate=1000)
    finally:
        await conn.close()
    fast = {"SITREP_REQUIRE_KEY": "true", "SITREP_HEARTBEAT_SECONDS": "0.3"}
    with serving(db_dsn, tmp_path, "--access-log", env=fast) as (proc, _, port):
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            assert (await http.get("/v1/stream/entries")).status_code == 401
            issued = await http.post("/v1/stream/tokens", headers={"X-API-Key": key})
            token = issued.json()["token"]
            async with (
                http.stream("GET", "/v1/stream/entries", params={"token": token}) as by_token,
                http.stream("GET", "/v1/stream/entries", headers={"X-API-Key": key}) as by_key,
            ):
                assert by_token.status_code == by_key.status_code == 200
                lines = by_token.aiter_lines()
                assert await anext(lines) == ": sitrep entry stream"
                conn = await asyncpg.connect(db_dsn)
                try:
                    await keydb.revoke_key(conn, keydb.parse_token(key)[0])  # type: ignore[index]
                finally:
                    await conn.close()
                started = time.monotonic()
                rest = [line async for line in lines]  # ends: the server closes the stream
                assert all(line in ("", ": heartbeat", "retry: 2000") for line in rest), rest
                await by_key.aread()  # ends too
                assert time.monotonic() - started < 5
            refused = await http.get("/v1/stream/entries", params={"token": token})
            assert refused.status_code == 401
        out, _ = _stop(proc)
    assert token not in out  # the access log masks it


def test_the_embedded_servers_log_stays_out_of_the_terminal_and_its_path_is_printed() -> None:
    with embedded_data_dir() as data_dir:
        env = {k: v for k, v in _env("", data_dir).items() if k != "DATABASE_URL"}
        port = spare_port()
        proc = subprocess.Popen(
            [str(SITREP), "serve", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            lines: list[str] = []
            deadline = time.monotonic() + START_TIMEOUT
            while not any("serving on" in line for line in lines):
                assert time.monotonic() < deadline, lines
                if select.select([proc.stderr], [], [], 0.5)[0]:
                    line = proc.stderr.readline()
                    assert line, f"serve exited ({proc.poll()}): {lines}"
                    lines.append(line.rstrip("\n"))
            log = data_dir / "pgdata" / "log"
            assert f"embedded PostgreSQL in {data_dir}; its log: {log}" in lines
            assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200
            out, err = _stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        assert proc.returncode == 0
        terminal = "\n".join(lines) + out + err
        assert "database system is ready" in log.read_text()  # PostgreSQL's own log, in its file
        for chatter in ("database system", "LOG:", "pg_ctl", "initdb", "server started"):
            assert chatter not in terminal, terminal


def test_a_request_sent_as_sigterm_arrives_is_answered(db_dsn: str, tmp_path: Path) -> None:
    """A connection open (idle, or with its request not read yet) when SIGTERM comes gets an
    answer to the request it sends, then is closed: not closed unanswered (SITREP_DRAIN_GRACE)."""
    with serving(db_dsn, tmp_path) as (proc, _, port):
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        time.sleep(0.2)  # accepted: each an idle connection of the server's
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # shutting down: it stopped listening, and would have closed these
        answers = []
        for s in idle:
            s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            s.close()
            answers.append(data)
        proc.communicate(timeout=15)
        assert proc.returncode == 0
    for data in answers:
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 "), data[:200]
        assert b"connection: close" in head


def test_connections_queued_when_sigterm_comes_are_answered_not_reset(db_dsn: str, tmp_path: Path) -> None:
    """A client whose connect() the kernel completed just before the server stopped listening has
    sent its request: it gets an answer, not a reset. The process is stopped (SIGSTOP) as SIGTERM
    arrives, so the connections made meanwhile sit in the listening socket's queue and the shutdown
    finds them there when the process goes on."""
    with serving(db_dsn, tmp_path) as (proc, _, port):
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGSTOP)
        try:
            queued = []
            for _ in range(10):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)  # the kernel completes it
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                queued.append(s)
            time.sleep(0.3)  # past uvicorn's 0.1 s tick: it shuts down before it polls the socket again
        finally:
            proc.send_signal(signal.SIGCONT)
        answers = []
        for s in queued:
            data = b""
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except ConnectionResetError:
                data = b"reset"
            s.close()
            answers.append(data.split(b"\r\n", 1)[0])
        proc.communicate(timeout=15)
        assert proc.returncode == 0
    assert answers == [b"HTTP/1.1 200 OK"] * 10, answers
