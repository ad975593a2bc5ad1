"""bench/bare.py serves sitrep's pages byte for byte on every workload of bench/compare.py.

The bare endpoint is the yardstick sitrep's uncached pages are measured against; it is only a
fair one while it does the same work for the same bytes. If sitrep's page changes (a field, an
order, the cursor, the ETag) and bare.py does not follow, this fails, before a benchmark
compares unlike things.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from db.generate import generate

BENCH = Path(__file__).resolve().parents[2] / "bench"
SECRET = "bare-test-secret"
BASE = "http://testserver.local"
# the headers a client acts on; RateLimit-* are sitrep's limiter, which bare.py does not have
SAME_HEADERS = (
    "content-type",
    "etag",
    "cache-control",
    "vary",
    "access-control-allow-origin",
    "access-control-expose-headers",
)


def _module(name: str) -> ModuleType:
    if f"bench_{name}" in sys.modules:
        return sys.modules[f"bench_{name}"]
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def paths(conn: asyncpg.Connection, db_dsn: str) -> list[tuple[str, str]]:
    """(workload, path) for a sample of every REST workload bench/compare.py measures."""
    await generate(conn, entries=1500, seed=1)
    compare = _module("compare")
    out = []
    for w in await compare.rest_workloads(conn, SECRET, actor_urls=40):
        step = max(1, len(w.paths) // 40)
        out += [(w.name, path) for path in w.paths[::step]]
    for w in await compare.q_workloads(conn, db_dsn, SECRET):
        out += [(w.name, path) for path in w.paths]
    return out


@pytest.fixture
async def bare(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    app = _module("bare").Bare(db_dsn, SECRET)
    await app.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            del client.headers["accept-encoding"]  # as wrk sends: no compression
            yield client
    finally:
        await app.close()


def _link(value: str | None) -> tuple[str, str, list[tuple[str, str]]] | None:
    """A Link header's target, its query pairs in any order (sitrep's order follows a set)."""
    if value is None:
        return None
    target, rel = value.split(">; ", 1)
    assert rel == 'rel="next"'
    url = urlsplit(target.removeprefix("<"))
    return f"{url.scheme}://{url.netloc}", url.path, sorted(parse_qsl(url.query))


@pytest.mark.parametrize("entry_cache_mb", [0, 64])
async def test_bare_pages_are_sitreps(
    db_dsn: str, paths: list[tuple[str, str]], bare: httpx.AsyncClient, entry_cache_mb: int
) -> None:
    settings = Settings(secret=SECRET, anonymous_rate=100_000, redis_url=None, entry_cache_mb=entry_cache_mb)
    workloads = {name for name, _ in paths}
    assert workloads == {"blog", "actor", "deep", "Q1", "Q2", "Q3", "Q4", "Q5"}
    async with AsyncTestClient(create_app(settings, db_dsn), base_url=BASE) as sitrep:
        del sitrep.headers["accept-encoding"]
        pages = 0
        for _round in range(2):  # the second time from sitrep's warm entry cache, where it has one
            for name, path in paths:
                ours: Any = await sitrep.get(path)
                theirs = await bare.get(path)
                assert ours.status_code == 200, (name, path, ours.text[:300])
                assert theirs.status_code == 200, (name, path, theirs.text[:300])
                assert theirs.content == ours.content, (name, path)
                for header in SAME_HEADERS:
                    assert theirs.headers.get(header) == ours.headers.get(header), (name, path, header)
                assert _link(theirs.headers.get("link")) == _link(ours.headers.get("link")), (name, path)
                pages += len(ours.json()["data"]) > 0
        # the comparison compared pages with entries in them, and followed cursors
        assert pages > len(paths)
        deep = [ours for name, ours in paths if name == "deep"]
        assert len(deep) == 50
