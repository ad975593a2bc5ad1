"""Compression: brotli or gzip when asked and worth it, strong per-coding ETags that still give
304s and If-Match, streams left as they are (api/compression.py)."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import asyncpg
import brotli
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.caching import etag_for
from api.compression import _Cache, negotiate
from api.settings import Settings
from db import keys as keydb
from tests.db import factories as f

SECRET = "compression-test-secret"


@pytest.fixture
async def data(conn: asyncpg.Connection) -> list[int]:
    blog = await f.blog(conn, "kyiv-live")
    place = await f.location(conn, "sevastopol", 44.6, 33.5)
    peskov = await f.actor(conn, "dmitry-peskov", "Dmitry Peskov")
    return [
        await f.entry(conn, blog, f.at(i), f"Update {i}", ["A paragraph " * 80], actors=[peskov], locations=[place])
        for i in range(6)
    ]


@pytest.fixture
async def client(db_dsn: str) -> Any:
    async with AsyncTestClient(create_app(Settings(secret=SECRET, anonymous_rate=100_000), db_dsn)) as client:
        yield client


async def _raw(client: AsyncTestClient[Any], path: str, **headers: str) -> tuple[Any, bytes]:
    async with client.stream("GET", path, headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, raw


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        ("gzip", "gzip"),
        ("gzip, deflate, br", "br"),
        ("br;q=0, gzip;q=0.5", "gzip"),
        ("GZIP", "gzip"),
        ("*", "gzip"),
        ("br;q=0, *", "gzip"),
        ("gzip;q=0, br;q=0", None),
        ("gzip;q=nonsense", None),
        ("identity", None),
        ("deflate", None),
        ("", None),
    ],
)
def test_the_coding_follows_accept_encoding(header: str, coding: str | None) -> None:
    assert negotiate(header) == coding


@pytest.mark.parametrize(("coding", "decode"), [("gzip", gzip.decompress), ("br", brotli.decompress)])
async def test_a_page_is_compressed_when_asked_with_its_own_strong_tag(
    client: AsyncTestClient[Any], data: list[int], coding: str, decode: Any
) -> None:
    plain, plain_raw = await _raw(client, "/v1/entries", **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert "." not in plain.headers["etag"]
    assert len(plain_raw) > 1024
    assert "Accept-Encoding" in plain.headers["vary"]

    packed, packed_raw = await _raw(client, "/v1/entries", **{"Accept-Encoding": coding})
    assert packed.headers["content-encoding"] == coding
    assert decode(packed_raw) == plain_raw
    assert int(packed.headers["content-length"]) == len(packed_raw) < len(plain_raw) / 2
    suffix = {"gzip": ".gz", "br": ".br"}[coding]
    assert packed.headers["etag"] == plain.headers["etag"][:-1] + suffix + '"'
    assert {"Accept", "Accept-Encoding"} <= {v.strip() for v in packed.headers["vary"].split(",")}

    # revalidation: each client gets back the tag of the variant it holds
    held = await client.get("/v1/entries", headers={"Accept-Encoding": coding, "If-None-Match": packed.headers["etag"]})
    assert held.status_code == 304
    assert held.headers["etag"] == packed.headers["etag"]
    switched = await client.get(
        "/v1/entries", headers={"Accept-Encoding": coding, "If-None-Match": plain.headers["etag"]}
    )
    assert switched.status_code == 304
    assert switched.headers["etag"] == plain.headers["etag"]
    head = await client.head("/v1/entries", headers={"Accept-Encoding": coding})
    assert head.headers["content-length"] == packed.headers["content-length"]
    assert head.headers["etag"] == packed.headers["etag"]


async def test_small_bodies_streams_and_problems_small_go_as_they_are(
    client: AsyncTestClient[Any], data: list[int]
) -> None:
    small, _ = await _raw(client, "/v1/blogs/kyiv-live", **{"Accept-Encoding": "gzip"})
    assert small.status_code == 200
    assert "content-encoding" not in small.headers
    export, raw = await _raw(client, "/v1/entries?format=ndjson", **{"Accept-Encoding": "gzip, br"})
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert "content-encoding" not in export.headers
    assert raw.count(b"\n") == len(data)
    sse = await client.head("/v1/stream/entries", headers={"Accept-Encoding": "gzip"})
    assert sse.headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in sse.headers


async def test_if_match_takes_the_compressed_variants_tag(
    client: AsyncTestClient[Any], data: list[int], conn: asyncpg.Connection
) -> None:
    _, token = await keydb.create_key(
        conn, SECRET, name=f"c-{uuid.uuid4().hex[:6]}", scopes=["read", "write"], rate=1000
    )
    path = f"/v1/entries/{data[0]}"
    seen, _ = await _raw(client, path, **{"Accept-Encoding": "gzip"})
    assert seen.headers["etag"].endswith('.gz"')  # one entry with its long paragraph is over 1 kB
    writer = {"Authorization": f"Bearer {token}"}
    ok = await client.patch(path, json={"headline": "Edited"}, headers={**writer, "If-Match": seen.headers["etag"]})
    assert ok.status_code == 200
    stale = await client.patch(path, json={"headline": "Again"}, headers={**writer, "If-Match": seen.headers["etag"]})
    assert stale.status_code == 412


async def test_compression_can_be_turned_off(db_dsn: str, data: list[int]) -> None:
    settings = Settings(secret=SECRET, anonymous_rate=100_000, compression=False)
    async with AsyncTestClient(create_app(settings, db_dsn)) as client:
        response, raw = await _raw(client, "/openapi.json", **{"Accept-Encoding": "gzip, br"})
        assert "content-encoding" not in response.headers
        assert response.headers["etag"] == etag_for(raw)


def test_the_compressed_body_cache_keeps_within_its_bound() -> None:
    cache = _Cache(limit=1000)
    for i in range(20):
        cache.put(f'"{i}"'.encode(), "gzip", bytes(100))
    assert cache.size <= 1000
    assert cache.get(b'"19"', "gzip") == bytes(100)
    assert cache.get(b'"0"', "gzip") is None  # the oldest went first
    cache.put(b'"big"', "br", bytes(600))  # over a quarter of the bound: not kept
    assert cache.get(b'"big"', "br") is None
