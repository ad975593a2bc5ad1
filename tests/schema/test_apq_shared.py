"""Persisted GraphQL documents shared by instances through Redis (schema/persisted.py).

Two apps on one database and one Redis stand for two instances behind a load balancer: a
client registers a document on one and sends only its hash to the other. Without Redis the
store degrades to each instance's own memory: a hash registered elsewhere is
PERSISTED_QUERY_NOT_FOUND (the client registers it again), never a server error.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from schema.persisted import document_hash
from tests.schema.conftest import World

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
QUERY = "{ entries(first: 2) { nodes { headline blog { slug } } } }"
EXT = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(QUERY)}}


def _settings(redis_url: str, prefix: str, **more: object) -> Settings:
    return Settings(secret="apq-tests", anonymous_rate=100_000, redis_url=redis_url, redis_prefix=prefix, **more)  # type: ignore[arg-type]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    value = f"sitrep-apq-{uuid.uuid4().hex[:10]}:"
    yield value
    client = aioredis.Redis.from_url(REDIS_URL)
    found = [k async for k in client.scan_iter(match=value + "*")]
    if found:
        await client.delete(*found)
    await client.aclose()


async def _apps(db_dsn: str, *settings: Settings) -> tuple[AsyncExitStack, list[AsyncTestClient]]:  # type: ignore[type-arg]
    stack = AsyncExitStack()
    clients = [await stack.enter_async_context(AsyncTestClient(create_app(s, db_dsn))) for s in settings]
    return stack, clients


def _hash_only(client: AsyncTestClient):  # type: ignore[no-untyped-def, type-arg]
    return client.get("/graphql", params={"extensions": json.dumps(EXT)})


async def test_a_hash_registered_on_one_instance_is_answered_by_another(db_dsn: str, world: World, prefix: str) -> None:
    stack, (a, b) = await _apps(db_dsn, _settings(REDIS_URL, prefix), _settings(REDIS_URL, prefix))
    async with stack:
        registered = await a.post("/graphql", json={"query": QUERY, "extensions": EXT})
        assert registered.status_code == 200
        assert registered.json()["data"]["entries"]["nodes"][0]["headline"].startswith("Update 119")

        answered = await _hash_only(b)
        assert answered.status_code == 200
        assert answered.json() == registered.json()
        again = await _hash_only(b)  # now from b's own memory
        assert again.json() == registered.json()

        metrics = (await b.get("/metrics")).text
        assert 'sitrep_graphql_apq_hits_total{store="redis"} 1.0' in metrics
        assert 'sitrep_graphql_apq_hits_total{store="local"} 1.0' in metrics

        # kept in Redis under the prefix, for a day since last use
        redis = aioredis.Redis.from_url(REDIS_URL)
        try:
            key = f"{prefix}apq:{document_hash(QUERY)}"
            assert (await redis.get(key)) == QUERY.encode()
            assert 86000 < await redis.ttl(key) <= 86400
        finally:
            await redis.aclose()


async def test_a_document_in_redis_that_does_not_match_its_hash_is_not_answered(
    db_dsn: str, world: World, prefix: str
) -> None:
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        await redis.set(f"{prefix}apq:{document_hash(QUERY)}", "{ __typename }")
    finally:
        await redis.aclose()
    stack, (a,) = await _apps(db_dsn, _settings(REDIS_URL, prefix))
    async with stack:
        miss = await _hash_only(a)
        assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_without_redis_each_instance_keeps_its_own_and_nothing_fails(db_dsn: str, world: World) -> None:
    gone = f"redis://127.0.0.1:{_closed_port()}/0"
    stack, (a, b) = await _apps(db_dsn, _settings(gone, "x:"), _settings(gone, "x:"))
    async with stack:
        registered = await a.post("/graphql", json={"query": QUERY, "extensions": EXT})
        assert registered.status_code == 200
        assert "data" in registered.json()
        assert (await _hash_only(a)).json() == registered.json()  # a remembers it

        # b never saw it: the protocol's miss, which makes the client register it again
        miss = await _hash_only(b)
        assert miss.status_code == 200
        assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        again = await b.post("/graphql", json={"query": QUERY, "extensions": EXT})
        assert again.json() == registered.json()
        answers = await asyncio.gather(*(_hash_only(b) for _ in range(20)))
        assert {r.status_code for r in answers} == {200}
        assert all(r.json() == registered.json() for r in answers)
        assert "sitrep_graphql_apq_redis_errors_total" in (await b.get("/metrics")).text


async def test_a_redis_that_returns_is_used_again(db_dsn: str, world: World, prefix: str) -> None:
    """A store that found Redis down leaves it alone for a second, then shares again."""
    stack, (a, b) = await _apps(db_dsn, _settings(REDIS_URL, prefix), _settings(REDIS_URL, prefix))
    async with stack:
        store = a.app.state.graphql_apq
        store._failed(ConnectionError("as if Redis had gone"))
        assert not store.shared
        await a.post("/graphql", json={"query": QUERY, "extensions": EXT})  # kept in a only
        assert (await _hash_only(b)).json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        await asyncio.sleep(1.1)
        assert store.shared
        await a.post("/graphql", json={"query": QUERY, "extensions": EXT})
        assert "data" in (await _hash_only(b)).json()
