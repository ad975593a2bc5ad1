"""GET /v1/entries JSON pages answered by the fast path (api/fast_entries.py) are the route's own
answers: the same status, bytes and headers, for every kind of page, and whatever it does not
take (another format, a mistake, an export) is answered by the route itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.fast_entries import FastEntryPages
from api.settings import Settings
from db.sample import load_sample_if_empty
from tests.api.test_metrics import scrape

Client = AsyncTestClient[Litestar]

# every filter, the sorts, counts, cursors and the formats the route negotiates
PATHS = [
    "/v1/entries",
    "/v1/entries?limit=5",
    "/v1/entries?limit=5&count=true",
    "/v1/entries?sort=published_at&limit=7",
    "/v1/entries?sort=-updated_at&limit=3",
    "/v1/entries?sort=updated_at&limit=3&count=true",
    "/v1/entries?q=drone&limit=3",
    "/v1/entries?q=drone&count=true",
    "/v1/entries?q=zzzznothing",
    "/v1/entries?kind=post&kind=video&limit=4",
    "/v1/entries?since=2023-09-13T10:00:00Z&until=2023-09-13T14:00:00Z&limit=5",
    "/v1/entries?updated_since=2000-01-01T00:00:00Z&limit=4",
    "/v1/entries?bbox=22,44,40,53&limit=4&count=true",
    "/v1/entries?limit=2&format=json",
    "/v1/entries?limit=200",
    # mistakes: the route names them
    "/v1/entries?limit=0",
    "/v1/entries?limit=abc&sort=sideways",
    "/v1/entries?nonsense=1",
    "/v1/entries?cursor=not-a-cursor",
    "/v1/entries?since=yesterday",
    "/v1/entries?q=" + "x" * 300,
    "/v1/entries?all=true",
    "/v1/entries?limit=1&limit=2",
    # other formats: the route answers
    "/v1/entries?format=csv&limit=3",
    "/v1/entries?format=geojson&limit=3",
    "/v1/entries?format=ndjson&limit=3",
    "/v1/entries?format=xml",
    "/v1/entries/",
]


async def _refs(dsn: str) -> list[str]:
    """Paths with the sample's own blog, actors, locations and sources."""
    conn = await asyncpg.connect(dsn)
    try:
        await load_sample_if_empty(conn)
        blog = await conn.fetchval("SELECT slug FROM blogs ORDER BY id LIMIT 1")
        actors = await conn.fetch(
            "SELECT a.slug FROM actors a JOIN entry_actors ea ON ea.actor_id = a.id"
            " GROUP BY a.slug ORDER BY count(*) DESC, a.slug LIMIT 2"
        )
        location = await conn.fetchval(
            "SELECT l.slug FROM locations l JOIN entry_locations el ON el.location_id = l.id"
            " GROUP BY l.slug ORDER BY count(*) DESC, l.slug LIMIT 1"
        )
        source = await conn.fetchval(
            "SELECT s.slug FROM sources s JOIN entry_sources es ON es.source_id = s.id"
            " GROUP BY s.slug ORDER BY count(*) DESC, s.slug LIMIT 1"
        )
    finally:
        await conn.close()
    a, b = actors[0]["slug"], actors[1]["slug"]
    return [
        f"/v1/entries?blog={blog}&limit=4",
        f"/v1/entries?actor={a}&limit=3&count=true",
        f"/v1/entries?actor={a}&actor={b}&actor_match=all",
        f"/v1/entries?actor={a}&actor={b}&actor_match=any&limit=2",
        f"/v1/entries?location={location}&source={source}",
        f"/v1/entries?blog={blog}&actor={a}&since=2023-09-13T00:00:00Z&kind=post",
    ]


@pytest.fixture
async def clients(db_dsn: str) -> AsyncIterator[tuple[Client, Client]]:
    paths = await _refs(db_dsn)
    fast = Settings(secret="api-test-secret", anonymous_rate=100_000, load_sample=False)
    slow = Settings(secret="api-test-secret", anonymous_rate=100_000, load_sample=False, rest_fast=False)
    async with AsyncTestClient(create_app(fast, db_dsn)) as f, AsyncTestClient(create_app(slow, db_dsn)) as s:
        f.paths = s.paths = paths  # type: ignore[attr-defined]
        yield f, s


# a rate limit's remaining requests and reset follow the clock between one app's requests, not
# the path that answered: both must send them, with values of their own
_CLOCKED = ("ratelimit-remaining", "ratelimit-reset")


def _answer(response: Any) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = [(k, "(clocked)" if k in _CLOCKED else v) for k, v in response.headers.multi_items()]
    return response.status_code, response.content, sorted(headers)


async def _same(fast: Client, slow: Client, path: str, **kw: Any) -> Any:
    a = await fast.request(kw.pop("method", "GET"), path, **kw)
    b = await slow.request(a.request.method, path, **kw)
    assert _answer(a) == _answer(b), path
    return a


def test_the_fast_path_is_in_place_only_when_asked() -> None:
    def layers(settings: Settings) -> list[str]:
        app, found = create_app(settings, "postgresql://nobody@127.0.0.1:1/none").asgi_handler, []
        while app is not None:
            found.append(type(app).__name__)
            app = getattr(app, "app", None)
        return found

    assert "FastEntryPages" in layers(Settings(secret="s"))
    assert "FastEntryPages" not in layers(Settings(secret="s", rest_fast=False))


async def test_every_page_and_every_mistake_is_answered_as_the_route_answers_it(
    clients: tuple[Client, Client],
) -> None:
    fast, slow = clients
    paths = PATHS + fast.paths  # type: ignore[attr-defined]
    statuses = set()
    for path in paths:
        statuses.add((await _same(fast, slow, path)).status_code)
    assert statuses == {200, 400}  # the corpus has pages and mistakes
    for path in fast.paths:  # type: ignore[attr-defined]
        page = (await fast.get(path)).json()
        assert page["data"], path  # the sample has entries for each: a filter that finds nothing proves little


async def test_following_the_cursors_down_gives_the_same_pages_and_links(clients: tuple[Client, Client]) -> None:
    fast, slow = clients
    path: str | None = "/v1/entries?limit=7&count=true"
    seen = 0
    while path is not None:
        answer = await _same(fast, slow, path)
        assert answer.status_code == 200
        body = answer.json()
        seen += len(body["data"])
        link = answer.headers.get("link")
        assert (link is None) == (body["page"]["next_cursor"] is None)
        path = link[link.index("/v1/") : link.index(">")] if link else None
    assert seen == body["page"]["total"] == 48  # the whole sample, each entry once


async def test_headers_the_caches_use_are_the_same(clients: tuple[Client, Client]) -> None:
    fast, slow = clients
    first = await _same(fast, slow, "/v1/entries?limit=3")
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=15"
    not_modified = await _same(fast, slow, "/v1/entries?limit=3", headers={"If-None-Match": f"W/{tag}"})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    for accept in ("application/json", "text/csv", "application/x-ndjson", "image/png", "*/*"):
        await _same(fast, slow, "/v1/entries?limit=2", headers={"Accept": accept})
    gzipped = await _same(fast, slow, "/v1/entries?limit=50", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip"
    head = await _same(fast, slow, "/v1/entries?limit=3", method="HEAD")
    assert head.content == b""
    assert head.headers["etag"] == tag
    keyed = await _same(fast, slow, "/v1/entries?limit=3", headers={"X-API-Key": "sk_nonsense"})
    assert keyed.status_code == 401


async def test_its_requests_are_counted_under_the_routes_label(clients: tuple[Client, Client]) -> None:
    fast, _ = clients
    before = await scrape(fast)
    for _ in range(3):
        assert (await fast.get("/v1/entries?limit=1")).status_code == 200
    after = await scrape(fast)
    key = ("sitrep_http_requests_total", (("method", "GET"), ("route", "/v1/entries"), ("status", "200")))
    assert after[key] - before.get(key, 0) == 3


async def test_a_database_that_fails_mid_request_is_answered_as_the_route_answers_it(
    clients: tuple[Client, Client], db_dsn: str
) -> None:
    fast, slow = clients
    assert (await _same(fast, slow, "/v1/entries?limit=2")).status_code == 200
    name = db_dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(db_dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        a, b = await fast.get("/v1/entries?limit=2"), await slow.get("/v1/entries?limit=2")
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert (a.status_code, b.status_code) == (503, 503), (a.text, b.text)
    assert a.headers["content-type"] == b.headers["content-type"] == "application/problem+json"
    assert a.headers["retry-after"] == b.headers["retry-after"]
    assert a.headers["cache-control"] == b.headers["cache-control"] == "no-store"
    assert a.json()["status"] == 503
    assert a.json().keys() == b.json().keys()


def test_the_route_handler_it_borrows_is_the_registered_one() -> None:
    app = create_app(Settings(secret="s"), "postgresql://nobody@127.0.0.1:1/none")
    layer: Any = app.asgi_handler
    while not isinstance(layer, FastEntryPages):
        layer = layer.app
    assert layer.handler.handler_name == "list_entries"
