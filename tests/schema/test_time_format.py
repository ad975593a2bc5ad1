"""One time format in both skins: GraphQL's DateTime reads exactly as REST's times (RFC 3339, `Z`)."""

from __future__ import annotations

import re

import asyncpg
from litestar.testing import AsyncTestClient

from tests.schema.conftest import Runner, World

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
QUERY = """{ entries(first: 3) { nodes { databaseId publishedAt createdAt updatedAt
  blog { databaseId publishedAt createdAt updatedAt }
  actors { actor { slug createdAt updatedAt } } } }
  timeline(interval: HOUR) { start } }"""


async def test_graphql_times_are_rests_times_on_both_execution_paths(
    client: AsyncTestClient,  # type: ignore[type-arg]
    gql: Runner,
    world: World,
    conn: asyncpg.Connection,
) -> None:
    # a time with microseconds and one given with another offset are written alike by both skins
    await conn.execute(
        "UPDATE entries SET published_at = '2023-09-13T23:59:58.123456+03:00' WHERE id = $1", world.entries[-1]
    )
    fast = await gql.outcome(QUERY)
    plain = await gql.outcome(QUERY, fast=False)
    assert fast.path == "fast"
    assert fast.body == plain.body
    over_http = (await client.post("/graphql", json={"query": QUERY})).json()
    assert over_http == fast.body

    nodes = fast.body["data"]["entries"]["nodes"]
    assert len(nodes) == 3
    for node in nodes:
        rest = (await client.get(f"/v1/entries/{node['databaseId']}")).json()
        assert [node["publishedAt"], node["createdAt"], node["updatedAt"]] == [
            rest["published_at"],
            rest["created_at"],
            rest["updated_at"],
        ]
        blog = (await client.get(f"/v1/blogs/{node['blog']['databaseId']}")).json()
        assert node["blog"]["publishedAt"] == blog["published_at"]
        assert node["blog"]["createdAt"] == blog["created_at"]
        for actor in node["actors"]:
            rest_actor = (await client.get(f"/v1/actors/{actor['actor']['slug']}")).json()
            assert actor["actor"]["createdAt"] == rest_actor["created_at"]
    moved = next(n for n in nodes if n["databaseId"] == world.entries[-1])
    assert moved["publishedAt"] == "2023-09-13T20:59:58.123456Z"
    stamps = [n[k] for n in nodes for k in ("publishedAt", "createdAt", "updatedAt")]
    stamps += [b["start"] for b in fast.body["data"]["timeline"]]
    assert all(RFC3339_UTC.fullmatch(s) for s in stamps), stamps

    # the change feed writes the same form
    changes = (await client.get("/v1/changes", params={"limit": 5})).json()["data"]
    assert changes
    assert all(RFC3339_UTC.fullmatch(c["at"]) for c in changes)
    assert all(RFC3339_UTC.fullmatch(c["data"]["created_at"]) for c in changes if c["data"])
