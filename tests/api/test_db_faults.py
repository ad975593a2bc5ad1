"""Database faults under load: every answer is a 200 or a 503 problem with Retry-After, never a
500 and never the server's plain-text "Internal Server Error" (issue #12, defect 1)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
from litestar.testing import AsyncTestClient

from db import keys as keydb
from tests.api.live import live_server

SECRET = "live-server-test-secret"  # the live server's
READERS = 8
QUERY = '{"query": "{ entries(first: 2) { nodes { id } } }"}'


def _read(base: str, token: str, stop: threading.Event, seen: Counter[str], bad: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=10) as http:
        while not stop.is_set():
            for method, path, body in (
                ("GET", "/v1/entries", None),
                ("GET", "/ready", None),
                ("GET", "/v1/actors", None),
                ("POST", "/graphql", QUERY),
            ):
                # a fresh key header each time: the key cache is dropped whenever its LISTEN is cut
                r = http.request(method, path, headers={**headers, "Content-Type": "application/json"}, content=body)
                seen[f"{path} {r.status_code}"] += 1
                if r.status_code == 200:
                    continue
                if path == "/graphql":  # refused in GraphQL's shape
                    shaped = (
                        r.headers["content-type"].startswith("application/json")
                        and r.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
                    )
                else:
                    shaped = path == "/ready" or r.headers["content-type"].startswith("application/problem+json")
                ok = r.status_code == 503 and int(r.headers.get("retry-after", "0")) > 0 and shaped
                if not ok:
                    bad.append(f"{method} {path}: {r.status_code} {r.headers.get('content-type')} {r.text[:200]}")


def _unexpected(log: Path) -> str:
    """The server log from its first unexpected error (what a failure here needs to be understood)."""
    text = log.read_text()
    start = max(text.find("unhandled error"), text.find("unexpected error"))
    return text[start : start + 4000] if start >= 0 else text[-2000:]


async def test_connections_killed_under_load_are_503s_never_500s(
    db_dsn: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    tokens = []
    for _ in range(READERS):
        _, token = await keydb.create_key(conn, SECRET, name=f"f-{uuid.uuid4().hex[:6]}", scopes=("read",), rate=10**6)
        tokens.append(token)
    log = tmp_path / "server.log"
    with live_server(db_dsn, tmp_path, log, SITREP_POOL_MAX="4") as base:
        stop = threading.Event()
        seen: Counter[str] = Counter()
        bad: list[str] = []
        readers = [asyncio.create_task(asyncio.to_thread(_read, base, t, stop, seen, bad)) for t in tokens]
        try:
            killed = 0
            for _ in range(12):  # about 3 s of connections cut under the readers
                await asyncio.sleep(0.25)
                killed += await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        finally:
            stop.set()
            await asyncio.gather(*readers)
        assert killed > 0
        assert not bad, f"{len(bad)} bad answers, e.g. {bad[:5]}; all: {dict(seen)}; log: {_unexpected(log)}"
        assert sum(n for k, n in seen.items() if k.endswith(" 200")) > 0, seen
        # and once the faults stop, everything answers again
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(50):
                if (await http.get("/v1/entries", headers={"Authorization": f"Bearer {tokens[0]}"})).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("no 200 after the faults stopped")


async def test_a_database_that_refuses_new_connections_is_a_503_not_a_500(
    client: AsyncTestClient,  # type: ignore[type-arg]
    db_dsn: str,
) -> None:
    """`ALLOW_CONNECTIONS false` (or a database dropped or renamed under the service) refuses a
    new connection with an SQL error, not a network one: still the service is unavailable."""
    assert (await client.get("/v1/actors")).status_code == 200
    name = db_dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(db_dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        answers = {path: await client.get(path) for path in ("/v1/actors", "/v1/blogs", "/v1/entries?limit=1")}
        gql = await client.post("/graphql", json={"query": "{ entries(first: 1) { nodes { id } } }"})
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    for path, r in answers.items():
        assert r.status_code == 503, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json", path
        assert int(r.headers["retry-after"]) > 0, path
    assert gql.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", gql.text
    # and it answers again once allowed: at once, or after the probe (every 0.25 s) finds it back
    for _ in range(40):
        if (await client.get("/v1/actors")).status_code == 200:
            break
        await asyncio.sleep(0.25)
    assert (await client.get("/v1/actors")).status_code == 200
