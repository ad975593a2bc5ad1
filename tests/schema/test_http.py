"""/graphql over HTTP: POST, GET with HTTP caching, persisted queries, the explorer."""

from __future__ import annotations

import hashlib
import json

from litestar.testing import AsyncTestClient

from tests.schema.conftest import World

QUERY = "{ entries(first: 2) { nodes { headline blog { slug } } } }"


async def test_post_answers_json(client: AsyncTestClient, world: World) -> None:  # type: ignore[type-arg]
    response = await client.post("/graphql", json={"query": QUERY})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    nodes = response.json()["data"]["entries"]["nodes"]
    assert nodes[0]["headline"].startswith("Update 119")


async def test_post_with_variables_and_operation_name(client: AsyncTestClient, world: World) -> None:  # type: ignore[type-arg]
    query = "query A { entries(first: 1) { totalCount } } query B($s: String!) { actor(slug: $s) { name } }"
    response = await client.post("/graphql", json={"query": query, "operationName": "B", "variables": {"s": "peskov"}})
    assert response.json() == {"data": {"actor": {"name": "Dmitry Peskov"}}}


async def test_get_is_cacheable_with_etag(client: AsyncTestClient, world: World) -> None:  # type: ignore[type-arg]
    response = await client.get("/graphql", params={"query": QUERY})
    assert response.status_code == 200
    assert response.json()["data"]["entries"]["nodes"][1]["blog"] == {"slug": "day-two"}
    etag = response.headers["etag"]
    assert "public" in response.headers["cache-control"]
    again = await client.get("/graphql", params={"query": QUERY}, headers={"If-None-Match": etag})
    assert again.status_code == 304


async def test_get_with_errors_is_not_stored(client: AsyncTestClient, world: World) -> None:  # type: ignore[type-arg]
    response = await client.get("/graphql", params={"query": '{ actor(slug: "nobody") { name } }'})
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert response.headers["cache-control"] == "no-store"


async def test_get_refuses_mutations(client: AsyncTestClient, world: World) -> None:  # type: ignore[type-arg]
    response = await client.get("/graphql", params={"query": "mutation { __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_bad_requests_are_400_with_a_code(client: AsyncTestClient, world: World) -> None:  # type: ignore[type-arg]
    bad_body = await client.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})
    bad_vars = await client.get("/graphql", params={"query": QUERY, "variables": "{oops"})
    no_query = await client.post("/graphql", json={})
    for response in (bad_body, bad_vars):
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert no_query.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_automatic_persisted_queries_round_trip(client: AsyncTestClient, world: World) -> None:  # type: ignore[type-arg]
    sha = hashlib.sha256(QUERY.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    miss = await client.get("/graphql", params={"extensions": json.dumps(ext)})
    assert miss.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await client.post("/graphql", json={"query": QUERY, "extensions": ext})
    assert "data" in registered.json()
    hit = await client.get("/graphql", params={"extensions": json.dumps(ext)})
    assert hit.json() == registered.json()
    wrong = await client.post("/graphql", json={"query": QUERY + " ", "extensions": ext})
    assert wrong.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_browser_gets_graphiql(client: AsyncTestClient, world: World) -> None:  # type: ignore[type-arg]
    response = await client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_costly_queries_spend_the_rate_and_are_refused_when_it_is_spent(db_dsn: str, world: World) -> None:
    from api.app import create_app
    from api.settings import Settings

    query = "{ entries(first: 30) { nodes { id } } }"  # estimated at 30 rows
    async with AsyncTestClient(create_app(Settings(secret="t", anonymous_rate=50), db_dsn)) as client:
        first = await client.post("/graphql", json={"query": query})
        assert "data" in first.json()
        assert int(first.headers["ratelimit-remaining"]) <= 20
        second = await client.post("/graphql", json={"query": query})
        error = second.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] > 0
        assert "data" not in second.json()
