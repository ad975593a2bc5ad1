"""The REST read API's wiring: shapes, Link headers, cursors and problem details.

Filter semantics are tested on the query functions (tests/db); here, thin checks that each
route maps its parameters into them and renders answers and errors as the contract says.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from tests.db import factories as f
from tests.db.factories import at

PROBLEM = "application/problem+json"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"secret": "rest-read-test", "anonymous_rate": 100_000, "redis_url": None}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def client(db_dsn: str) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(settings(), db_dsn)) as client:
        yield client


@pytest.fixture
async def data(conn: asyncpg.Connection) -> dict[str, int]:
    ids: dict[str, int] = {}
    ids["blog"] = await f.blog(conn, "ukraine-live")
    ids["other"] = await f.blog(conn, "gaza-live", published_at=at(-600))
    ids["peskov"] = await f.actor(conn, "dmitry-peskov", "Dmitry Peskov", aliases=["Песков"], country="RU")
    ids["un"] = await f.actor(conn, "united-nations", "United Nations", "organization")
    ids["ukraine"] = await f.location(conn, "ukraine", 49.0, 32.0, "country", country="UA")
    ids["crimea"] = await f.location(conn, "crimea", 45.3, 34.4, "region", ids["ukraine"], country="UA")
    ids["sevastopol"] = await f.location(conn, "sevastopol", 44.6, 33.5, "city", ids["crimea"], country="UA")
    ids["tass"] = await f.source(conn, "tass")
    for i in range(7):
        ids[f"e{i}"] = await f.entry(
            conn,
            ids["blog"] if i < 5 else ids["other"],
            at(i * 10),
            f"Drone strike report {i}" if i % 2 else f"Talks update {i}",
            ["Body paragraph."],
            actors={ids["peskov"]: "speaker"} if i % 2 else [ids["un"]],
            locations=[ids["sevastopol"]] if i < 3 else [ids["ukraine"]],
            sources=[ids["tass"]] if i == 1 else [],
            media=[{"url": "https://example.org/a.jpg", "caption": "Smoke", "credit": "AP"}] if i == 1 else [],
        )
    return ids


def assert_problem(response: Any, status: int, *names: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert "Traceback" not in response.text
    if names:
        assert {e["name"] for e in body["errors"]} == set(names), body
    return body


# ---------------------------------------------------------------- entries


async def test_entries_list_shape_relations_and_link_header(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    r = await client.get("/v1/entries", params={"limit": 2, "count": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["id"] for e in body["data"]] == [data["e6"], data["e5"]]
    assert body["page"]["limit"] == 2
    assert body["page"]["total"] == 7
    assert body["page"]["next_cursor"]
    assert 'rel="next"' in r.headers["link"]
    assert "cursor=" in r.headers["link"]
    first = body["data"][0]
    assert first["blog"] == {"id": data["other"], "slug": "gaza-live", "title": "Gaza Live"}
    assert {
        "published_at",
        "updated_at",
        "headline",
        "body",
        "kind",
        "actors",
        "locations",
        "sources",
        "media",
    } <= first.keys()
    assert first["actors"] == [
        {
            "role": "mentioned",
            "actor": {
                "id": data["un"],
                "slug": "united-nations",
                "name": "United Nations",
                "kind": "organization",
                "country": None,
            },
        }
    ]


async def test_following_next_cursors_walks_everything_once(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3, "actor": ["dmitry-peskov", str(data["un"])]}
    while True:
        r = await client.get("/v1/entries", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert "total" not in body["page"]
        seen += [e["id"] for e in body["data"]]
        if body["page"]["next_cursor"] is None:
            assert "link" not in r.headers
            break
        params["cursor"] = body["page"]["next_cursor"]
    assert seen == [data[f"e{i}"] for i in range(6, -1, -1)]


async def test_filters_map_into_the_query_layer(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    async def ids(**params: Any) -> list[int]:
        r = await client.get("/v1/entries", params=params)
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["data"]]

    assert await ids(blog="gaza-live") == [data["e6"], data["e5"]]
    assert await ids(location="crimea", sort="published_at") == [data["e0"], data["e1"], data["e2"]]
    assert await ids(q="drone", source="tass") == [data["e1"]]
    assert await ids(since=at(20).isoformat(), until="2023-09-13T06:40:00Z") == [data["e3"], data["e2"]]
    assert await ids(actor=["dmitry-peskov", "united-nations"], actor_match="all") == []
    assert await ids(bbox="33,44,34,45", kind="post") == [data["e2"], data["e1"], data["e0"]]


async def test_one_entry_and_its_media(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    r = await client.get(f"/v1/entries/{data['e1']}")
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["media"] == [
        {
            "position": 0,
            "kind": "image",
            "url": "https://example.org/a.jpg",
            "caption": "Smoke",
            "credit": "AP",
            "alt_text": None,
            "embed": None,
        }
    ]
    assert e["sources"][0]["slug"] == "tass"
    assert e["actors"][0]["role"] == "speaker"
    assert_problem(await client.get(f"/v1/entries/{data['e6'] + 100}"), 404)


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"limit": "0"}, {"limit"}),
        ({"limit": "201"}, {"limit"}),
        ({"limit": "ten"}, {"limit"}),
        ({"since": "yesterday"}, {"since"}),
        ({"until": "2023-09-13"}, {"until"}),
        ({"updated_since": "2023-09-13T06:00:00"}, {"updated_since"}),
        ({"bbox": "1,2,3"}, {"bbox"}),
        ({"bbox": "0,50,10,40"}, {"bbox"}),
        ({"sort": "headline"}, {"sort"}),
        ({"kind": "tweet"}, {"kind"}),
        ({"actor_match": "some"}, {"actor_match"}),
        ({"actor": "Not A Slug"}, {"actor"}),
        ({"blog": "²"}, {"blog"}),
        ({"q": "drone\x00"}, {"q"}),
        ({"since": "2023-09-13T06:00:00+99:00"}, {"since"}),
        ({"location": "99999999999999999999"}, {"location"}),
        ({"cursor": "garbage"}, {"cursor"}),
        ({"colour": "red"}, {"colour"}),
        ({"since": "bad", "kind": "bad", "nope": "1"}, {"since", "kind", "nope"}),
        ({"sort": ""}, {"sort"}),
        ({"actor_match": ""}, {"actor_match"}),
    ],
)
async def test_bad_parameters_are_400_problems_naming_each(
    client: AsyncTestClient[Any], data: dict[str, int], params: dict[str, str], names: set[str]
) -> None:
    assert_problem(await client.get("/v1/entries", params=params), 400, *names)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/timeline", "interval="),
        ("/v1/timeline", "actor_match="),
        ("/v1/actors", "sort="),
        ("/v1/locations", "sort="),
        ("/v1/sources", "sort="),
        ("/v1/entries", "sort=&limit=5"),
    ],
)
async def test_an_empty_choice_is_a_400_naming_it(client: AsyncTestClient[Any], path: str, query: str) -> None:
    name = query.split("=")[0]
    problem = assert_problem(await client.get(f"{path}?{query}"), 400, name)
    assert "empty" in problem["errors"][0]["reason"]


async def test_unknown_references_in_filters_are_404_naming_the_parameter(
    client: AsyncTestClient[Any], data: dict[str, int]
) -> None:
    assert_problem(await client.get("/v1/entries", params={"actor": "no-such-actor"}), 404, "actor")
    assert_problem(await client.get("/v1/entries", params={"location": "999999"}), 404, "location")


async def test_a_cursor_is_refused_under_other_filters_or_sort(
    client: AsyncTestClient[Any], data: dict[str, int]
) -> None:
    r = await client.get("/v1/entries", params={"limit": 1, "blog": "ukraine-live"})
    token = r.json()["page"]["next_cursor"]
    assert (
        await client.get("/v1/entries", params={"limit": 1, "blog": "ukraine-live", "cursor": token})
    ).status_code == 200
    assert_problem(
        await client.get("/v1/entries", params={"limit": 1, "blog": "gaza-live", "cursor": token}), 400, "cursor"
    )
    assert_problem(
        await client.get("/v1/entries", params={"blog": "ukraine-live", "sort": "published_at", "cursor": token}),
        400,
        "cursor",
    )
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert_problem(await client.get("/v1/entries", params={"blog": "ukraine-live", "cursor": forged}), 400, "cursor")


async def test_unknown_route_is_a_404_problem(client: AsyncTestClient[Any]) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404)


class Proxy:
    """A TCP relay to PostgreSQL, on its own thread and loop, that the test can cut as a crashed
    or unreachable server would be."""

    def __init__(self, dsn: str) -> None:
        # relay to wherever the DSN points: a TCP server, or the embedded server's unix socket
        parts = urlsplit(dsn)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        port = parts.port or 5432
        self.unix_path = f"{socket_dir}/.s.PGSQL.{port}" if socket_dir.startswith("/") else None
        self.upstream = (parts.hostname or "127.0.0.1", port)
        self.loop = asyncio.new_event_loop()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> int:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, "127.0.0.1", 0), self.loop)
        self.server = future.result(5)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.unix_path:
            up_reader, up_writer = await asyncio.open_unix_connection(self.unix_path)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def _cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self.loop).result(5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def test_database_down_is_a_fast_503_with_retry_after(db_dsn: str) -> None:
    parts = urlsplit(db_dsn)
    proxy = Proxy(db_dsn)
    port = proxy.start()
    dsn = urlunsplit((parts.scheme, f"{parts.username}@127.0.0.1:{port}", parts.path, "", ""))
    try:
        async with AsyncTestClient(create_app(settings(), dsn)) as client:
            assert (await client.get("/v1/entries")).status_code == 200
            proxy.cut()
            for _ in range(3):
                started = time.monotonic()
                r = await client.get("/v1/entries")
                assert time.monotonic() - started < 3
                body = assert_problem(r, 503)
                assert int(r.headers["retry-after"]) > 0
                assert "errors" not in body
    finally:
        proxy.stop()


# ---------------------------------------------------------------- catalog and timeline


async def test_blogs_newest_first_and_by_id_or_slug(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    r = await client.get("/v1/blogs")
    assert r.status_code == 200, r.text
    assert [b["slug"] for b in r.json()["data"]] == ["ukraine-live", "gaza-live"]
    assert r.json()["data"][0]["entry_count"] == 5
    by_slug = (await client.get("/v1/blogs/gaza-live")).json()
    assert by_slug == (await client.get(f"/v1/blogs/{data['other']}")).json()
    assert by_slug["entry_count"] == 2
    assert_problem(await client.get("/v1/blogs/no-such-blog"), 404)


async def test_actors_by_alias_and_entry_count(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    found = (await client.get("/v1/actors", params={"q": "пес"})).json()["data"]
    assert [a["slug"] for a in found] == ["dmitry-peskov"]
    assert found[0]["entry_count"] == 3
    ranked = (await client.get("/v1/actors", params={"sort": "-entry_count"})).json()["data"]
    assert [(a["slug"], a["entry_count"]) for a in ranked] == [("united-nations", 4), ("dmitry-peskov", 3)]
    assert (await client.get("/v1/actors/dmitry-peskov")).json()["id"] == data["peskov"]
    assert_problem(await client.get("/v1/actors/nobody"), 404)
    assert_problem(await client.get("/v1/actors", params={"country": "Russia"}), 400, "country")


async def test_locations_carry_parent_and_ancestors(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    loc = (await client.get("/v1/locations/sevastopol")).json()
    assert [a["slug"] for a in loc["ancestors"]] == ["ukraine", "crimea"]
    assert loc["parent"]["slug"] == "crimea"
    inside = (await client.get("/v1/locations", params={"within": "ukraine"})).json()["data"]
    assert [x["slug"] for x in inside] == ["crimea", "sevastopol"]
    near = (await client.get("/v1/locations", params={"near": "44.6,33.6", "radius_km": "20"})).json()["data"]
    assert [x["slug"] for x in near] == ["sevastopol"]
    assert 0 < near[0]["distance_km"] < 20
    assert_problem(await client.get("/v1/locations", params={"near": "44.6,33.6"}), 400, "radius_km")
    assert_problem(await client.get("/v1/locations", params={"within": "atlantis"}), 404, "within")


async def test_sources_with_entry_count(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    r = await client.get("/v1/sources", params={"kind": "agency", "count": "true"})
    body = r.json()
    assert body["page"]["total"] == 1
    assert body["data"][0]["slug"] == "tass"
    assert body["data"][0]["entry_count"] == 1
    assert (await client.get(f"/v1/sources/{data['tass']}")).json()["slug"] == "tass"


async def test_catalog_pages_walk_with_cursors(client: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    for i in range(7):
        await f.actor(conn, f"actor-{i}", f"Actor {chr(ord('G') - i)}")
    names: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        body = (await client.get("/v1/actors", params=params)).json()
        names += [a["name"] for a in body["data"]]
        if not body["page"]["next_cursor"]:
            break
        params["cursor"] = body["page"]["next_cursor"]
    assert names == sorted(names)
    assert len(names) == 7


async def test_timeline_counts_per_interval(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    r = await client.get("/v1/timeline", params={"interval": "hour", "blog": "ukraine-live"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["interval"] == "hour"
    assert [(b["start"], b["count"]) for b in body["data"]] == [("2023-09-13T06:00:00Z", 5)]
    days = (await client.get("/v1/timeline", params={"actor": "dmitry-peskov"})).json()["data"]
    assert days == [{"start": "2023-09-13T00:00:00Z", "count": 3}]
    assert_problem(await client.get("/v1/timeline", params={"interval": "week"}), 400, "interval")
    assert_problem(await client.get("/v1/timeline", params={"limit": "5"}), 400, "limit")


async def test_a_query_over_its_time_budget_is_a_503_not_a_hang(db_dsn: str, conn: asyncpg.Connection) -> None:
    async with AsyncTestClient(create_app(settings(statement_timeout_ms=300), db_dsn)) as client:
        assert (await client.get("/v1/entries")).status_code == 200
        # another session holds the table: the read waits, and statement_timeout ends the wait
        async with conn.transaction():
            await conn.execute("LOCK TABLE entries IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            r = await client.get("/v1/entries")
            assert time.monotonic() - started < 3
        assert_problem(r, 503)
        assert r.headers["retry-after"]
        assert (await client.get("/v1/entries")).status_code == 200


async def test_other_litestar_errors_are_problems_too(client: AsyncTestClient[Any], data: dict[str, int]) -> None:
    assert_problem(await client.get("/v1/entries/not-a-number"), 404)
    assert_problem(await client.get("/v1/actors/²"), 400, "id")  # neither an id nor a slug
    assert_problem(await client.get("/v1/blogs/99999999999999999999"), 400, "id")
    assert_problem(
        await client.get("/v1/entries", params={"since": "2023-09-14T00:00:00Z", "until": "2023-09-13T00:00:00Z"}),
        400,
        "until",
    )


async def test_an_unexpected_error_is_a_generic_500_problem_without_a_traceback() -> None:
    from litestar import Litestar, get

    from api.errors import exception_handlers

    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("secret internals: /etc/passwd")

    async with AsyncTestClient(
        Litestar([boom], exception_handlers=exception_handlers(), logging_config=None)
    ) as client:
        r = await client.get("/boom")
    body = assert_problem(r, 500)
    assert "secret internals" not in r.text
    assert body["title"] == "Internal Server Error"
