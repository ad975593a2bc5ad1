"""A JavaScript client (Apollo Client on Node) against `sitrep serve` with the sample loaded.

The server is the real command in a subprocess; the client is tests/schema/node/client.mjs
(dependencies pinned by its package-lock.json, installed with `npm ci` when missing).
What the client got is compared with what the database holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

NODE_DIR = Path(__file__).parent / "node"
PAGE_SIZE = 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _run(*argv: str, cwd: Path, seconds: float) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"{argv} failed ({process.returncode}):\n{err.decode()}"
    return out.decode()


async def _node_modules() -> None:
    if not (NODE_DIR / "node_modules" / ".package-lock.json").exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed for this test (Node 20 or later)"
        await _run(npm, "ci", "--no-audit", "--no-fund", cwd=NODE_DIR, seconds=300)


@pytest.fixture
async def server_url(db_dsn: str, tmp_path: Path) -> AsyncIterator[str]:
    """`sitrep serve` on a free 127.0.0.1 port over the test database, the sample loaded."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITREP_", "REDIS_"))}
    env |= {
        "DATABASE_URL": db_dsn,
        "SITREP_DATA_DIR": str(tmp_path),
        "SITREP_SECRET": "node-client-test",
        "SITREP_ANONYMOUS_RATE": "100000",
        "SITREP_LOAD_SAMPLE": "true",
    }
    sitrep = str(Path(sys.executable).parent / "sitrep")
    log = (tmp_path / "serve.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sitrep, "serve", "--port", str(port), env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):  # 30 s at most; it takes about 2 s
                assert process.returncode is None, (tmp_path / "serve.log").read_text()
                try:
                    if (await http.get(f"{base}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("sitrep serve did not answer /health within 30 s")
        yield f"{base}/graphql"
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


async def _client(url: str, actor: str) -> dict[str, Any]:
    await _node_modules()
    node = shutil.which("node")
    assert node, "node is needed for this test (Node 20 or later)"
    out = await _run(node, "client.mjs", url, actor, str(PAGE_SIZE), cwd=NODE_DIR, seconds=60)
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.mark.slow  # a server subprocess, and `npm ci` on a fresh clone
async def test_apollo_client_filters_pages_and_persists_queries(server_url: str, conn: asyncpg.Connection) -> None:
    # the sample was loaded by the server before /health answered
    top = await conn.fetchrow(
        "SELECT a.id, a.slug FROM actors a JOIN entry_actors ea ON ea.actor_id = a.id"
        " GROUP BY a.id ORDER BY count(*) DESC, a.slug LIMIT 1"
    )
    assert top is not None
    actor_id, actor = top["id"], top["slug"]
    everything = [r["id"] for r in await conn.fetch("SELECT id FROM entries ORDER BY published_at DESC, id DESC")]
    of_actor = [
        r["id"]
        for r in await conn.fetch(
            "SELECT e.id FROM entries e JOIN entry_actors ea ON ea.entry_id = e.id AND ea.actor_id = $1"
            " ORDER BY e.published_at DESC, e.id DESC",
            actor_id,
        )
    ]
    linked = {
        r["entry_id"]: set(r["slugs"])
        for r in await conn.fetch(
            "SELECT ea.entry_id, array_agg(a.slug) AS slugs FROM entry_actors ea"
            " JOIN actors a ON a.id = ea.actor_id GROUP BY ea.entry_id"
        )
    }
    assert len(everything) > 2 * PAGE_SIZE
    assert len(everything) % PAGE_SIZE, "the sample should make a ragged last page"
    assert 1 < len(of_actor) < len(everything)

    result = await _client(server_url, actor)

    filtered = result["filtered"]
    assert filtered["ids"] == of_actor
    assert filtered["totalCount"] == len(of_actor)
    assert [set(slugs) for slugs in filtered["actorsLinked"]] == [linked[i] for i in of_actor]
    assert set(filtered["roles"]) <= {"SPEAKER", "MENTIONED"}

    walk = result["walk"]
    assert walk["finished"]
    assert walk["ids"] == everything  # every entry once, newest first
    assert walk["pageLengths"] == [PAGE_SIZE] * (len(everything) // PAGE_SIZE) + [len(everything) % PAGE_SIZE]
    assert len(walk["pageLengths"]) == math.ceil(len(everything) / PAGE_SIZE)

    apq = result["apq"]
    miss, register = apq["first"]
    query = register["sentQuery"]
    assert query is not None
    digest = hashlib.sha256(query.encode()).hexdigest()
    assert miss == {
        "status": 200,
        "sentQuery": None,
        "sentHash": digest,
        "errorCodes": ["PERSISTED_QUERY_NOT_FOUND"],
        "hasData": False,
    }
    assert register == {"status": 200, "sentQuery": query, "sentHash": digest, "errorCodes": [], "hasData": True}
    # another client sends only the hash and is answered from the registered query
    assert apq["second"] == [{"status": 200, "sentQuery": None, "sentHash": digest, "errorCodes": [], "hasData": True}]
    assert apq["registeredIds"] == apq["replayedIds"] == everything[:5]
