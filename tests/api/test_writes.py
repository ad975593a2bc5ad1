"""Writes over REST and GraphQL: scopes, problems naming the field, nothing half-written,
Idempotency-Key, imports, and the change feed as a mirror sees it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from db import keys as keydb

SECRET = "writes-test-secret"
ENTRY = {
    "blog": "day-1",
    "published_at": "2023-09-13T10:00:00Z",
    "headline": "Kremlin says talks are off",
    "body": ["Dmitry Peskov told reporters in Moscow that talks were off."],
    "actors": [{"actor": "peskov", "role": "speaker"}],
    "locations": ["moscow"],
    "sources": ["tass"],
    "media": [{"kind": "image", "url": "https://example.org/p.jpg", "caption": "Peskov", "credit": "Agency"}],
}


@pytest.fixture
async def client(db_dsn: str) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = Settings(secret=SECRET, anonymous_rate=100_000, redis_url=None)
    async with AsyncTestClient(create_app(settings, db_dsn)) as client:
        yield client


async def _token(conn: asyncpg.Connection, *scopes: str) -> str:
    _, token = await keydb.create_key(conn, SECRET, name=f"w-{uuid.uuid4().hex[:6]}", scopes=scopes, rate=100_000)
    return token


@pytest.fixture
async def writer(conn: asyncpg.Connection) -> dict[str, str]:
    return {"Authorization": f"Bearer {await _token(conn, 'read', 'write')}"}


@pytest.fixture
async def catalog(client: AsyncTestClient[Any], writer: dict[str, str]) -> None:
    for path, body in (
        (
            "/v1/blogs",
            {"slug": "day-1", "title": "Russia-Ukraine war: day 567", "published_at": "2023-09-13T06:00:00Z"},
        ),
        ("/v1/actors", {"slug": "peskov", "name": "Dmitry Peskov", "kind": "person", "aliases": ["Peskov"]}),
        (
            "/v1/locations",
            {"slug": "russia", "name": "Russia", "kind": "country", "latitude": 61.5, "longitude": 105.3},
        ),
        (
            "/v1/locations",
            {
                "slug": "moscow",
                "name": "Moscow",
                "kind": "city",
                "latitude": 55.75,
                "longitude": 37.62,
                "parent": "russia",
            },
        ),
        ("/v1/sources", {"slug": "tass", "name": "TASS", "kind": "agency"}),
    ):
        response = await client.post(path, json=body, headers=writer)
        assert response.status_code == 201, response.text
        assert response.headers["location"].startswith(path + "/")


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def _counts(conn: asyncpg.Connection) -> tuple[int, ...]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM entry_actors), (SELECT count(*) FROM media),"
        " (SELECT count(*) FROM changes), (SELECT count(*) FROM idempotency_keys)"
    )
    assert row is not None
    return tuple(row)


async def test_writing_needs_a_key_with_the_write_scope(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, catalog: None
) -> None:
    before = await _counts(conn)
    _problem(await client.post("/v1/entries", json=ENTRY), 401)
    reader = {"Authorization": f"Bearer {await _token(conn, 'read')}"}
    _problem(await client.post("/v1/entries", json=ENTRY, headers=reader), 403)
    _problem(await client.delete("/v1/entries/1", headers=reader), 403)
    assert await _counts(conn) == before


async def test_a_posted_entry_is_answered_as_the_read_api_shows_it(
    client: AsyncTestClient[Any], writer: dict[str, str], catalog: None
) -> None:
    response = await client.post("/v1/entries", json=ENTRY, headers=writer)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/v1/entries/{created['id']}"
    assert [(a["role"], a["actor"]["slug"]) for a in created["actors"]] == [("speaker", "peskov")]
    assert [loc["slug"] for loc in created["locations"]] == ["moscow"]
    assert created["media"][0]["caption"] == "Peskov"
    read = await client.get(response.headers["location"], headers=writer)
    assert read.status_code == 200
    assert read.json() == created


async def test_links_left_out_are_found_in_the_text(
    client: AsyncTestClient[Any], writer: dict[str, str], catalog: None
) -> None:
    body = {k: v for k, v in ENTRY.items() if k not in ("actors", "locations", "sources")}
    created = (await client.post("/v1/entries", json=body, headers=writer)).json()
    assert "peskov" in {a["actor"]["slug"] for a in created["actors"]}
    assert "moscow" in {loc["slug"] for loc in created["locations"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"blog": "no-such-blog"}, "blog"),
        ({"actors": [{"actor": "peskov"}, {"actor": "someone-unknown"}]}, "actors[1]"),
        ({"locations": ["atlantis"]}, "locations[0]"),
        ({"sources": [424242]}, "sources[0]"),
        ({"headline": ""}, "headline"),
        ({"published_at": "13/09/2023"}, "published_at"),
        ({"published_at": "0001-01-01T00:00:00Z"}, "published_at"),  # found by schemathesis: was a 500
        ({"published_at": "3000-01-01T00:00:00Z"}, "published_at"),
        ({"kind": "essay"}, "kind"),
        ({"media": [{"kind": "hologram"}]}, "media[0].kind"),
        ({"actors": [{"actor": "peskov", "role": "author"}]}, "actors[0].role"),
        ({"mood": "grim"}, "mood"),
    ],
)
async def test_a_bad_write_names_the_field_and_writes_nothing(
    client: AsyncTestClient[Any],
    conn: asyncpg.Connection,
    writer: dict[str, str],
    catalog: None,
    change: dict[str, Any],
    field: str,
) -> None:
    before = await _counts(conn)
    response = await client.post("/v1/entries", json=ENTRY | change, headers=writer)
    body = _problem(response, 400)
    assert [e["name"] for e in body["errors"]] == [field]
    assert await _counts(conn) == before


async def test_a_body_that_is_not_json_is_a_problem(client: AsyncTestClient[Any], writer: dict[str, str]) -> None:
    body = _problem(await client.post("/v1/entries", content=b"{headline:", headers=writer), 400)
    assert body["errors"][0]["name"] == "body"


async def test_a_retried_post_with_the_same_idempotency_key_creates_one_entry(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, writer: dict[str, str], catalog: None
) -> None:
    headers = {**writer, "Idempotency-Key": "publish-7f3a"}
    first = await client.post("/v1/entries", json=ENTRY, headers=headers)
    again = await client.post("/v1/entries", json=ENTRY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await conn.fetchval("SELECT count(*) FROM entries") == 1
    other = await client.post("/v1/entries", json=ENTRY | {"headline": "Something else"}, headers=headers)
    assert _problem(other, 409)["errors"][0]["name"] == "Idempotency-Key"
    assert await conn.fetchval("SELECT count(*) FROM entries") == 1
    # a key belongs to its caller: another key's same Idempotency-Key is another write
    someone = {"Authorization": f"Bearer {await _token(conn, 'write')}", "Idempotency-Key": "publish-7f3a"}
    assert (await client.post("/v1/entries", json=ENTRY, headers=someone)).status_code == 201
    assert await conn.fetchval("SELECT count(*) FROM entries") == 2


async def test_patch_changes_the_given_fields_and_delete_removes(
    client: AsyncTestClient[Any], writer: dict[str, str], catalog: None
) -> None:
    created = (await client.post("/v1/entries", json=ENTRY, headers=writer)).json()
    url = f"/v1/entries/{created['id']}"
    patched = await client.patch(url, json={"headline": "Talks are back on", "sources": []}, headers=writer)
    assert patched.status_code == 200, patched.text
    assert patched.json()["headline"] == "Talks are back on"
    assert patched.json()["sources"] == []
    assert patched.json()["actors"] == created["actors"]
    assert patched.json()["body"] == created["body"]
    _problem(await client.patch(url, json={"blog": "nowhere"}, headers=writer), 400)
    assert (await client.delete(url, headers=writer)).status_code == 204
    _problem(await client.delete(url, headers=writer), 404)
    _problem(await client.patch(url, json={"headline": "x"}, headers=writer), 404)
    _problem(await client.get(url, headers=writer), 404)


async def test_catalog_writes(client: AsyncTestClient[Any], writer: dict[str, str], catalog: None) -> None:
    dup = await client.post("/v1/actors", json={"slug": "peskov", "name": "Another", "kind": "person"}, headers=writer)
    assert _problem(dup, 409)["errors"][0]["name"] == "slug"
    bad = await client.post("/v1/actors", json={"slug": "Bad Slug", "name": "X", "kind": "person"}, headers=writer)
    assert _problem(bad, 400)["errors"][0]["name"] == "slug"
    actor = await client.patch("/v1/actors/peskov", json={"country": "RU", "aliases": ["Песков"]}, headers=writer)
    assert actor.status_code == 200, actor.text
    assert (actor.json()["country"], actor.json()["aliases"], actor.json()["name"]) == (
        "RU",
        ["Песков"],
        "Dmitry Peskov",
    )
    moved = await client.patch("/v1/locations/russia", json={"parent": "moscow"}, headers=writer)
    assert _problem(moved, 400)["errors"][0]["name"] == "parent"
    moscow = await client.patch("/v1/locations/moscow", json={"description": "Capital"}, headers=writer)
    assert moscow.json()["parent"]["slug"] == "russia"
    source = await client.patch("/v1/sources/tass", json={"url": "https://tass.com"}, headers=writer)
    assert source.json()["url"] == "https://tass.com"
    _problem(await client.patch("/v1/sources/nope", json={"url": None}, headers=writer), 404)


async def test_importing_a_page_over_http(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, writer: dict[str, str], page_text: str
) -> None:
    first = await client.post("/v1/imports", content=page_text.encode(), headers=writer)
    assert first.status_code == 201, first.text
    result = first.json()
    assert result["created"] > 10
    assert result["created"] == await conn.fetchval("SELECT count(*) FROM entries")
    again = (await client.post("/v1/imports", content=page_text.encode(), headers=writer)).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, result["created"])
    bad = await client.post("/v1/imports", content=b"this is not a live blog", headers=writer)
    _problem(bad, 400)


async def test_the_change_feed_over_http_mirrors_the_database(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, writer: dict[str, str], catalog: None
) -> None:
    ids = []
    for n in range(6):
        created = await client.post("/v1/entries", json=ENTRY | {"headline": f"Entry {n}"}, headers=writer)
        ids.append(created.json()["id"])
    await client.patch(f"/v1/entries/{ids[0]}", json={"headline": "Entry 0, revised"}, headers=writer)
    await client.delete(f"/v1/entries/{ids[1]}", headers=writer)
    await client.patch("/v1/actors/peskov", json={"description": "Kremlin spokesman"}, headers=writer)

    mirror: dict[tuple[str, int], dict[str, Any]] = {}
    after, seqs = 0, []
    while True:
        page = await client.get(f"/v1/changes?after={after}&limit=4")
        assert page.status_code == 200
        body = page.json()
        for change in body["data"]:
            seqs.append(change["seq"])
            key = (change["entity"], change["id"])
            if change["op"] == "delete":
                mirror.pop(key, None)
            else:
                mirror[key] = change["data"]
        if not body["data"]:
            assert body["page"]["next_after"] == after
            break
        after = body["page"]["next_after"]
    assert seqs == sorted(set(seqs))

    entries = {r["id"]: r for r in await conn.fetch("SELECT id, headline, updated_at FROM entries")}
    assert {i for (kind, i) in mirror if kind == "entry"} == set(entries)
    for i, row in entries.items():
        data = mirror[("entry", i)]
        assert data["headline"] == row["headline"]
        assert datetime.fromisoformat(data["updated_at"]) == row["updated_at"]
    for entity, table in (("blog", "blogs"), ("actor", "actors"), ("location", "locations"), ("source", "sources")):
        rows = (
            {r["id"]: dict(r) for r in await conn.fetch(f"SELECT id, slug, name FROM {table}")}
            if entity != "blog"
            else {r["id"]: dict(r) for r in await conn.fetch("SELECT id, slug, title AS name FROM blogs")}
        )
        got = {i: d for (kind, i), d in mirror.items() if kind == entity}
        assert {i: (d["slug"], d.get("name", d.get("title"))) for i, d in got.items()} == {
            i: (r["slug"], r["name"]) for i, r in rows.items()
        }
    assert mirror[("actor", 1)]["description"] == "Kremlin spokesman"

    for bad in ("after=-1", "after=x", "limit=0", "limit=100000", "colour=red"):
        _problem(await client.get(f"/v1/changes?{bad}"), 400)


GQL_CREATE = """
mutation($input: CreateEntryInput!) {
  createEntry(input: $input) { id databaseId headline actors { role actor { slug } } locations { slug } }
}"""


async def test_graphql_mutations_call_the_same_writes(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, writer: dict[str, str], catalog: None
) -> None:
    variables = {
        "input": {
            "blog": "day-1",
            "publishedAt": "2023-09-13T11:00:00Z",
            "headline": "Via GraphQL",
            "body": ["Peskov spoke in Moscow."],
            "actors": [{"actor": "peskov", "role": "SPEAKER"}],
        }
    }
    answer = (await client.post("/graphql", json={"query": GQL_CREATE, "variables": variables}, headers=writer)).json()
    created = answer["data"]["createEntry"]
    assert created["actors"] == [{"role": "SPEAKER", "actor": {"slug": "peskov"}}]
    assert [loc["slug"] for loc in created["locations"]] == ["moscow"]  # found by the linker

    before = await _counts(conn)
    unknown = {"input": {**variables["input"], "actors": [{"actor": "nobody-known"}]}}
    answer = (await client.post("/graphql", json={"query": GQL_CREATE, "variables": unknown}, headers=writer)).json()
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "actors[0]" in answer["errors"][0]["message"]
    assert await _counts(conn) == before

    reader = {"Authorization": f"Bearer {await _token(conn, 'read')}"}
    answer = (await client.post("/graphql", json={"query": GQL_CREATE, "variables": variables}, headers=reader)).json()
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    answer = (await client.post("/graphql", json={"query": GQL_CREATE, "variables": variables})).json()
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await _counts(conn) == before

    update = 'mutation($id: ID!) { updateEntry(id: $id, input: {headline: "Revised"}) { headline } }'
    answer = (
        await client.post("/graphql", json={"query": update, "variables": {"id": created["id"]}}, headers=writer)
    ).json()
    assert answer["data"]["updateEntry"]["headline"] == "Revised"
    delete = "mutation($id: ID!) { deleteEntry(id: $id) { databaseId } }"
    answer = (
        await client.post("/graphql", json={"query": delete, "variables": {"id": created["id"]}}, headers=writer)
    ).json()
    assert answer["data"]["deleteEntry"]["databaseId"] == created["databaseId"]
    answer = (
        await client.post("/graphql", json={"query": delete, "variables": {"id": created["id"]}}, headers=writer)
    ).json()
    assert answer["errors"][0]["extensions"]["code"] == "NOT_FOUND"


CATALOG_MUTATIONS = """
mutation {
  createBlog(input: {slug: "day-2", title: "Day 2", publishedAt: "2023-09-14T06:00:00Z", status: CLOSED}) { slug status }
  createActor(input: {slug: "kuleba", name: "Dmytro Kuleba", kind: PERSON, country: "UA"}) { slug country }
  updateActor(id: "kuleba", input: {aliases: ["Kuleba"]}) { slug aliases }
  createLocation(input: {slug: "kyiv", name: "Kyiv", kind: CITY, latitude: 50.45, longitude: 30.52}) { slug }
  updateLocation(id: "kyiv", input: {description: "Capital"}) { slug description }
  createSource(input: {slug: "reuters", name: "Reuters", kind: AGENCY}) { slug }
  updateSource(id: "reuters", input: {url: "https://reuters.com"}) { url }
}"""


async def test_graphql_catalog_mutations_and_import(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, writer: dict[str, str], page_text: str
) -> None:
    answer = (await client.post("/graphql", json={"query": CATALOG_MUTATIONS}, headers=writer)).json()
    assert "errors" not in answer, answer
    assert answer["data"] == {
        "createBlog": {"slug": "day-2", "status": "CLOSED"},
        "createActor": {"slug": "kuleba", "country": "UA"},
        "updateActor": {"slug": "kuleba", "aliases": ["Kuleba"]},
        "createLocation": {"slug": "kyiv"},
        "updateLocation": {"slug": "kyiv", "description": "Capital"},
        "createSource": {"slug": "reuters"},
        "updateSource": {"url": "https://reuters.com"},
    }
    duplicate = 'mutation { createSource(input: {slug: "reuters", name: "R", kind: AGENCY}) { slug } }'
    answer = (await client.post("/graphql", json={"query": duplicate}, headers=writer)).json()
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"  # a taken slug
    imported = "mutation($text: String!) { importPage(text: $text) { blog { slug } blogChange created } }"
    answer = (
        await client.post("/graphql", json={"query": imported, "variables": {"text": page_text}}, headers=writer)
    ).json()
    assert answer["data"]["importPage"]["blogChange"] == "created"
    assert answer["data"]["importPage"]["created"] == await conn.fetchval("SELECT count(*) FROM entries")
