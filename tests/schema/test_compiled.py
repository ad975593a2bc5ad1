"""GraphQL's compiled path over HTTP, with REST's entry cache and its own kept answers
(schema/compiled.py): the same bytes as with nothing kept, and never older than the database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from schema.compiled import NodeCache
from tests.db.test_entries import World, build_world

SECRET = "compiled-test"
NODE = """databaseId publishedAt headline body kind blog { slug title }
  actors { role actor { databaseId slug name kind } } locations { databaseId slug name kind latitude longitude }
  sources { databaseId slug name kind }"""
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("{ entries(first: 50) { nodes { " + NODE + " } } }", {}),
    (
        "query($a: [String!], $after: String) { entries(first: 4, after: $after, filter: {actor: $a}) { totalCount"
        " edges { cursor node { " + NODE + " } } pageInfo { hasNextPage endCursor } } }",
        {"a": ["dmitry-peskov"]},
    ),
    ('{ entries(first: 5, filter: {blog: ["kyiv-live"]}) { nodes { id headline } } }', {}),
]


def _settings(**overrides: Any) -> Settings:
    return Settings(secret=SECRET, anonymous_rate=100_000, redis_url=None, **overrides)


@pytest.fixture
async def world(conn: asyncpg.Connection) -> World:
    return await build_world(conn)


@pytest.fixture
async def client(db_dsn: str, world: World) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(_settings(), db_dsn)) as client:
        yield client


@pytest.fixture
async def uncached(db_dsn: str, world: World) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(_settings(entry_cache_mb=0, graphql_cache_mb=0), db_dsn)) as client:
        yield client


def _kept(client: AsyncTestClient[Any]) -> NodeCache:
    nodes: NodeCache = client.app.state.graphql_nodes
    return nodes


async def _post(client: AsyncTestClient[Any], query: str, variables: dict[str, Any]) -> bytes:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    return response.content


@pytest.mark.parametrize(("query", "variables"), QUERIES)
async def test_answers_are_byte_identical_with_and_without_what_is_kept(
    client: AsyncTestClient[Any], uncached: AsyncTestClient[Any], query: str, variables: dict[str, Any]
) -> None:
    want = await _post(uncached, query, variables)
    assert await _post(client, query, variables) == want  # kept on the way
    assert len(_kept(client)) > 0
    assert len(client.app.state.entry_cache) > 0  # REST's cache is filled too: it shares the rows
    assert await _post(client, query, variables) == want  # now from what is kept
    assert len(_kept(uncached)) == 0
    # and as GET, and as the plain executor answers it
    got = await client.get("/graphql", params={"query": query, "variables": json.dumps(variables)})
    assert got.content == want


async def test_a_rest_page_fills_what_graphql_reads(client: AsyncTestClient[Any], world: World) -> None:
    rest = (await client.get("/v1/entries?limit=10")).json()["data"]
    query = "{ entries(first: 10) { nodes { databaseId headline actors { actor { slug } } } } }"
    body = await _post(client, query, {})
    assert len(_kept(client)) == 10
    nodes = msgspec.json.decode(body)["data"]["entries"]["nodes"]
    assert [(n["databaseId"], n["headline"]) for n in nodes] == [(e["id"], e["headline"]) for e in rest]
    assert [[a["actor"]["slug"] for a in n["actors"]] for n in nodes] == [
        [a["actor"]["slug"] for a in e["actors"]] for e in rest
    ]


async def test_a_change_shows_at_once(client: AsyncTestClient[Any], conn: asyncpg.Connection, world: World) -> None:
    query = "{ entries(first: 100) { nodes { databaseId headline actors { actor { databaseId name } } } } }"

    async def nodes() -> dict[int, Any]:
        response = await client.post("/graphql", json={"query": query})
        return {n["databaseId"]: n for n in response.json()["data"]["entries"]["nodes"]}

    before = await nodes()
    assert len(_kept(client)) == len(before)
    first = world.rows[0]["id"]
    peskov = world.ids["peskov"]
    # written on another connection, as another instance would
    await conn.execute("UPDATE entries SET headline = 'Changed elsewhere' WHERE id = $1", first)
    await conn.execute("UPDATE actors SET name = 'Dmitrii Peskov' WHERE id = $1", peskov)
    gone = world.rows[1]["id"]
    await conn.execute("DELETE FROM entries WHERE id = $1", gone)
    after = await nodes()
    assert after[first]["headline"] == "Changed elsewhere"
    assert gone not in after
    names = {a["actor"]["name"] for n in after.values() for a in n["actors"] if a["actor"]["databaseId"] == peskov}
    assert names == {"Dmitrii Peskov"}


async def test_kept_answers_stay_within_their_bound(db_dsn: str, world: World) -> None:
    async with AsyncTestClient(create_app(_settings(graphql_cache_mb=1), db_dsn)) as client:
        kept = _kept(client)
        kept.max_bytes = 3000  # a few entries' worth
        body = await _post(client, QUERIES[0][0], {})
        assert 0 < len(kept) < 40
        assert kept.size <= kept.max_bytes
        assert await _post(client, QUERIES[0][0], {}) == body
