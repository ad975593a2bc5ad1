"""More hostile GraphQL requests (beside the corpus in test_hostile.py), and a request that fails part way. Hostile GraphQL inputs: each must be an error carrying one of the contract's codes, never a
masked INTERNAL_SERVER_ERROR or a 5xx, and nothing half-written.

The corpus holds what a fault-injection and fuzzing run found (issue 12) and more of its kind:
numbers past any integer type, digits that are not ASCII, NUL characters, broken ids and cursors,
out-of-range pages and coordinates, operations on the wrong transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from db import keys as keydb
from tests.db import factories as f
from tests.schema.conftest import SECRET
from tests.schema.test_hostile import CODES

CONTRACT_CODES = CODES

NESTED = "{ entries(first: 1) { nodes { " * 6 + "id" + " } }" * 6
ALIASES = "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"

CORPUS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("entry id past bigint", '{ entry(id: "99999999999999999999") { id } }', None),
    ("entry id of a superscript digit", '{ entry(id: "²") { id } }', None),
    ("entry id of Arabic-Indic digits", '{ entry(id: "٣٤") { id } }', None),
    ("entry id negative", '{ entry(id: "-1") { id } }', None),
    ("actor id of a superscript digit", '{ actor(id: "²") { id } }', None),
    ("actor id past bigint", '{ actor(id: "99999999999999999999") { id } }', None),
    ("location id of a superscript digit", '{ location(id: "²") { id } }', None),
    ("node id not base64", '{ node(id: "!!!") { id } }', None),
    ("node id of an unknown type", '{ node(id: "Tm9wZTox") { id } }', None),  # Nope:1
    ("node id with a non-numeric key", '{ node(id: "RW50cnk6eA==") { id } }', None),  # Entry:x
    ("nodes with an empty id", '{ nodes(ids: ["", "RW50cnk6MQ=="]) { id } }', None),
    (
        "update of an entry id past bigint",
        'mutation { updateEntry(id: "99999999999999999999", input: {headline: "x"}) { id } }',
        None,
    ),
    ("delete of an entry id of a superscript digit", 'mutation { deleteEntry(id: "²") }', None),
    ("search with a NUL", '{ entries(filter: {search: "a\\u0000b"}) { nodes { id } } }', None),
    (
        "search with a NUL in a variable",
        "query($s: String) { entries(filter: {search: $s}) { nodes { id } } }",
        {"s": "a\x00b"},
    ),
    ("timeline search with a NUL", '{ timeline(filter: {search: "\\u0000"}) { count } }', None),
    ("actor slug with a NUL", '{ actor(slug: "pes\\u0000kov") { id } }', None),
    ("actor filter of a superscript digit", '{ entries(filter: {actor: ["²"]}) { nodes { id } } }', None),
    (
        "createEntry headline with a NUL",
        'mutation { createEntry(input: {blog: "day-one", publishedAt: "2023-09-13T10:00:00Z",'
        ' headline: "a\\u0000b", body: ["x"]}) { id } }',
        None,
    ),
    (
        "createEntry body with a NUL",
        'mutation { createEntry(input: {blog: "day-one", publishedAt: "2023-09-13T10:00:00Z",'
        ' headline: "fine", body: ["x\\u0000"]}) { id } }',
        None,
    ),
    (
        "createEntry in a blog of a superscript digit",
        'mutation { createEntry(input: {blog: "²", publishedAt: "2023-09-13T10:00:00Z", headline: "x"}) { id } }',
        None,
    ),
    ("first negative", "{ entries(first: -1) { nodes { id } } }", None),
    ("first past Int", "{ entries(first: 2147483648) { nodes { id } } }", None),
    ("first and last", "{ entries(first: 1, last: 1) { nodes { id } } }", None),
    ("a forged cursor", '{ entries(after: "garbage") { nodes { id } } }', None),
    ("a date that is not one", '{ entries(filter: {publishedAfter: "not a date"}) { nodes { id } } }', None),
    ("a year past 9999", '{ entries(filter: {publishedAfter: "99999-01-01T00:00:00Z"}) { nodes { id } } }', None),
    (
        "a bbox outside the globe",
        "{ locations(filter: {bbox: {minLon: -500, minLat: 0, maxLon: 500, maxLat: 1}}) { nodes { id } } }",
        None,
    ),
    (
        "near with a negative radius",
        "{ locations(filter: {near: {latitude: 0, longitude: 0, radiusKm: -1}}) { nodes { id } } }",
        None,
    ),
    (
        "near off the globe",
        "{ locations(filter: {near: {latitude: 91, longitude: 0, radiusKm: 1}}) { nodes { id } } }",
        None,
    ),
    ("a variable of the wrong type", "query($n: Int) { entries(first: $n) { nodes { id } } }", {"n": "ten"}),
    ("a variable past Int", "query($n: Int) { entries(first: $n) { nodes { id } } }", {"n": 2**40}),
    ("too deep", NESTED, None),
    ("too many aliases", ALIASES, None),
    ("too many tokens", "{ " + "__typename " * 3000 + "}", None),
    ("a subscription over HTTP", "subscription { entryPublished { id } }", None),
    ("an unknown field", "{ nosuchfield }", None),
    ("a syntax error", "{ entries(first: ", None),
    ("an empty document", "", None),
]


@pytest.fixture
async def small_world(conn: asyncpg.Connection) -> None:
    """A blog to write into, an entry, an actor (the first of each, id 1)."""
    blog = await f.blog(conn, "day-one")
    await f.actor(conn, "peskov", "Dmitry Peskov")
    await f.entry(conn, blog, f.at(0), headline="Update 0", body=["Paragraph."])


@pytest.fixture
async def keyed(db_dsn: str, conn: asyncpg.Connection) -> AsyncIterator[tuple[AsyncTestClient, dict[str, str]]]:  # type: ignore[type-arg]
    from api.app import create_app
    from api.settings import Settings

    _, token = await keydb.create_key(conn, SECRET, name="hostile", scopes=["read", "write"], rate=1_000_000)
    async with AsyncTestClient(create_app(Settings(secret=SECRET), db_dsn)) as client:
        yield client, {"X-API-Key": token}


@pytest.mark.parametrize(("name", "query", "variables"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_a_hostile_query_is_an_error_with_a_contract_code(
    keyed: tuple[AsyncTestClient, dict[str, str]],  # type: ignore[type-arg]
    small_world: None,
    conn: asyncpg.Connection,
    name: str,
    query: str,
    variables: dict[str, Any] | None,
) -> None:
    client, headers = keyed
    entries_before = await conn.fetchval("SELECT count(*) FROM entries")
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code in (200, 400), response.text
    body = response.json()
    errors = body.get("errors") or []
    assert errors, f"{name}: no error in {body}"
    codes = [e.get("extensions", {}).get("code") for e in errors]
    assert all(code in CONTRACT_CODES for code in codes), f"{name}: codes {codes}: {errors}"
    assert await conn.fetchval("SELECT count(*) FROM entries") == entries_before  # nothing written


async def test_a_request_that_fails_part_way_gives_its_connection_back(
    keyed: tuple[AsyncTestClient, dict[str, str]],  # type: ignore[type-arg]
    small_world: None,
) -> None:
    """One id of `nodes` refused while the others are still being looked up: the lookups left
    over must not take a connection after the request has given its own back (it would never
    return to the pool, and shutting down would wait for it for ever)."""
    client, headers = keyed
    pool = client.app.state.pool
    for _ in range(3):
        response = await client.post(
            "/graphql", json={"query": '{ nodes(ids: ["", "RW50cnk6MQ==", "QWN0b3I6MQ=="]) { id } }'}, headers=headers
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    for _ in range(20):
        await asyncio.sleep(0.05)
        if pool.get_idle_size() == pool.get_size():
            break
    assert pool.get_idle_size() == pool.get_size(), "a connection was taken and never given back"
