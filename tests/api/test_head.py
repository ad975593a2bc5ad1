"""HEAD on every GET route: the GET's status and headers, no body (api/head.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.api.live import live_server
from tests.db import factories as f

# headers that describe the answer and must be the GET's; RateLimit-Remaining and -Reset move
# with every request, so they are only required to be there
SAME = ("content-type", "content-length", "etag", "cache-control", "vary", "link")
RATE = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


@pytest.fixture
async def data(conn: asyncpg.Connection) -> dict[str, int]:
    blog = await f.blog(conn, "kyiv-live")
    sevastopol = await f.location(conn, "sevastopol", 44.6, 33.5)
    peskov = await f.actor(conn, "dmitry-peskov", "Dmitry Peskov")
    await f.source(conn, "tass")
    entries = [
        await f.entry(conn, blog, f.at(i), f"Update {i}", ["A paragraph."], actors=[peskov], locations=[sevastopol])
        for i in range(3)
    ]
    return {"entry": entries[0], "sevastopol": sevastopol}


def paths(data: dict[str, int]) -> list[str]:
    return [
        "/health",
        "/v1/entries?limit=2",
        "/v1/entries?format=csv",
        "/v1/entries?format=geojson",
        f"/v1/entries/{data['entry']}",
        "/v1/blogs",
        "/v1/blogs/kyiv-live",
        "/v1/actors?format=csv",
        "/v1/actors/dmitry-peskov",
        f"/v1/locations/{data['sevastopol']}",
        "/v1/sources/tass",
        "/v1/timeline?interval=hour",
        "/v1/changes?after=0&limit=2",
        "/openapi.json",
        "/docs/assets/favicon-32x32.png",
        # errors too: the GET's status and problem headers
        "/v1/entries/999999",
        "/v1/entries?limit=0",
        "/v1/blogs/kyiv-live?format=csv",
        "/no/such/route",
    ]


async def test_head_answers_the_get_status_and_headers_without_a_body(
    client: AsyncTestClient[Any], data: dict[str, int]
) -> None:
    for path in paths(data):
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        for name in SAME:
            assert head.headers.get(name) == got.headers.get(name), (path, name)
        if got.status_code == 200:
            assert int(head.headers["content-length"]) == got.num_bytes_downloaded, path  # as sent (compressed)
            assert head.headers["etag"], path
        if path.startswith("/v1/"):
            assert all(name in head.headers for name in RATE), path


async def test_head_with_a_matching_if_none_match_is_304(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    etag = (await client.get("/v1/entries")).headers["etag"]
    head = await client.head("/v1/entries", headers={"If-None-Match": etag})
    assert head.status_code == 304
    assert head.headers["etag"] == etag
    assert head.content == b""
    changed = await client.head("/v1/entries", headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200


async def test_head_is_no_write_and_no_way_round_auth(client: AsyncTestClient[Any]) -> None:
    # a route with no GET: HEAD is refused as GET is, and runs nothing
    assert (await client.head("/v1/imports")).status_code == (await client.get("/v1/imports")).status_code == 405
    # the admin routes stay closed to anonymous HEAD
    assert (await client.head("/v1/keys")).status_code == 401


@pytest.mark.parametrize("path", ["/v1/entries?format=ndjson", "/v1/actors?format=ndjson"])
async def test_head_of_a_streamed_export_ends_at_the_headers(
    client: AsyncTestClient[Any], data: dict[str, int], path: str
) -> None:
    head = await client.head(path)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("application/x-ndjson")
    assert head.content == b""
    # the export's connection went back to the pool: the next request still gets one
    assert (await client.get("/v1/entries?limit=1")).status_code == 200


async def test_head_over_a_real_socket(db_dsn: str, data: dict[str, int], tmp_path: Path) -> None:
    """uvicorn sends the GET's Content-Length and no body; the connection stays usable; a stream ends."""
    log = tmp_path / "server.log"
    with live_server(db_dsn, tmp_path / "data", log, SITREP_ANONYMOUS_RATE="100000") as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            got = await http.get("/v1/entries")
            head = await http.head("/v1/entries")
            assert head.status_code == 200
            assert head.headers["content-length"] == str(got.num_bytes_downloaded)  # as sent (compressed)
            assert head.headers["etag"] == got.headers["etag"]
            assert head.content == b""
            # the same keep-alive connection answers the next request cleanly
            assert (await http.get("/v1/entries")).content == got.content
            # a streamed export ends at its headers, its snapshot transaction closed cleanly (see the log check)
            export = await http.head("/v1/entries", params={"format": "ndjson"})
            assert export.status_code == 200
            assert export.headers["content-type"].startswith("application/x-ndjson")
            # Server-Sent Events never end by themselves; their HEAD does, at once
            stream = await http.head("/v1/stream/entries", timeout=5)
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert (await http.get("/health")).status_code == 200
    assert "ERROR" not in log.read_text(), log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()
