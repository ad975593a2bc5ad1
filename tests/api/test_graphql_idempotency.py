"""GraphQL mutations take an idempotency key as REST writes do: same key and arguments replay the
first answer without writing again; the same key with other arguments is refused with a code."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from tests.api.test_conditional_writes import catalog, client, writer

__all__ = ["catalog", "client", "writer"]  # fixtures shared with the write tests

CREATE = """mutation($input: CreateEntryInput!, $key: String) {
  createEntry(input: $input, idempotencyKey: $key) { databaseId headline publishedAt } }"""
INPUT = {"blog": "day-1", "publishedAt": "2023-09-13T11:00:00Z", "headline": "Talks resume in Geneva", "body": ["x"]}


async def _post(client: AsyncTestClient[Any], headers: dict[str, str], query: str, **variables: Any) -> Any:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    if body.get("data") is not None:  # a mutation that ran answers the seq its commit reached, replayed or not
        seq = body.pop("extensions")["seq"]
        assert seq > 0
        assert response.headers["sitrep-seq"] == str(seq)
    return body


async def _entries(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM entries")
    return count


async def test_the_argument_replays_and_refuses_a_different_request(
    client: AsyncTestClient[Any], writer: dict[str, str], catalog: None, conn: asyncpg.Connection
) -> None:
    made = await client.post(
        "/graphql", json={"query": CREATE, "variables": {"input": INPUT, "key": "create-1"}}, headers=writer
    )
    first = made.json()
    assert "errors" not in first, first
    assert "idempotent-replayed" not in made.headers
    replayed = await client.post(
        "/graphql", json={"query": CREATE, "variables": {"input": INPUT, "key": "create-1"}}, headers=writer
    )
    assert replayed.json()["data"] == first["data"]  # the same entry, the same answer
    assert replayed.headers["idempotent-replayed"] == "true"
    assert await _entries(conn) == 1

    other = await _post(client, writer, CREATE, input={**INPUT, "headline": "Something else"}, key="create-1")
    [error] = other["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["reason"] == "IDEMPOTENCY_KEY_REUSED"
    assert "idempotency key" in error["message"]
    assert await _entries(conn) == 1

    # no key: every call writes
    await _post(client, writer, CREATE, input=INPUT)
    await _post(client, writer, CREATE, input=INPUT)
    assert await _entries(conn) == 3
    bad = await _post(client, writer, CREATE, input=INPUT, key="")
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await _entries(conn) == 3


async def test_the_header_works_and_is_shared_with_rest(
    client: AsyncTestClient[Any], writer: dict[str, str], catalog: None, conn: asyncpg.Connection
) -> None:
    keyed = {**writer, "Idempotency-Key": "from-header"}
    first = await _post(client, keyed, CREATE, input=INPUT)
    assert (await _post(client, keyed, CREATE, input=INPUT)) == first
    assert await _entries(conn) == 1
    entry_id = first["data"]["createEntry"]["databaseId"]

    # the same key on a REST write is another request: refused, as REST refuses a reused key
    rest = await client.post(
        "/v1/entries",
        json={"blog": "day-1", "published_at": "2023-09-13T12:00:00Z", "headline": "x", "body": []},
        headers=keyed,
    )
    assert rest.status_code == 409
    assert await _entries(conn) == 1

    # two mutations in one document under one header: each its own key, both replayed on retry
    two = """mutation($a: UpdateEntryInput!, $b: UpdateEntryInput!, $id: ID!) {
      a: updateEntry(id: $id, input: $a) { headline } b: updateEntry(id: $id, input: $b) { headline } }"""
    both = {**writer, "Idempotency-Key": "two-edits"}
    variables = {"id": str(entry_id), "a": {"headline": "First"}, "b": {"headline": "Second"}}
    once = await _post(client, both, two, **variables)
    assert once["data"] == {"a": {"headline": "First"}, "b": {"headline": "Second"}}
    await conn.execute("UPDATE entries SET headline = 'Changed since' WHERE id = $1", entry_id)
    replay = await _post(client, both, two, **variables)
    assert replay == once  # answered from the keys, nothing written again
    assert await conn.fetchval("SELECT headline FROM entries WHERE id = $1", entry_id) == "Changed since"


async def test_delete_and_catalog_mutations_replay(
    client: AsyncTestClient[Any], writer: dict[str, str], catalog: None, conn: asyncpg.Connection
) -> None:
    created = (await _post(client, writer, CREATE, input=INPUT))["data"]["createEntry"]["databaseId"]
    delete = 'mutation($id: ID!) { deleteEntry(id: $id, idempotencyKey: "del-1") { databaseId } }'
    first = await _post(client, writer, delete, id=str(created))
    assert first == {"data": {"deleteEntry": {"databaseId": created}}}
    assert await _post(client, writer, delete, id=str(created)) == first  # not a NOT_FOUND: a replay

    actor = """mutation { createActor(idempotencyKey: "actor-1",
      input: {slug: "guterres", name: "António Guterres", kind: PERSON}) { databaseId slug } }"""
    made = await _post(client, writer, actor)
    assert "errors" not in made, made
    assert await _post(client, writer, actor) == made
    assert await conn.fetchval("SELECT count(*) FROM actors WHERE slug = 'guterres'") == 1
