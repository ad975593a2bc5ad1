"""Subscriptions seen by a real client (gql over graphql-transport-ws) against the app on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import asyncpg
import pytest
import uvicorn
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport
from litestar import Litestar

from schema.relay import to_global_id
from tests.schema.conftest import SECRET, World


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(db_dsn: str, world: World) -> AsyncIterator[tuple[str, Litestar]]:
    from api.app import create_app
    from api.settings import Settings

    app = create_app(Settings(secret=SECRET, anonymous_rate=100_000), db_dsn)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started
    try:
        yield f"ws://127.0.0.1:{server.config.port}/graphql", app
    finally:
        server.should_exit = True
        await task


async def _collect(url: str, query: str, into: list[dict[str, Any]]) -> None:
    transport = WebsocketsTransport(url=url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])
    async with Client(transport=transport) as session:
        async for result in session.subscribe(gql(query)):
            into.append(result)


async def _until(done: Callable[[], bool], what: str) -> None:
    for _ in range(250):
        if done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within 5 s: {what}")


async def test_entry_deleted_reports_deletes_that_matched_the_filter(
    served: tuple[str, Litestar], world: World, conn: asyncpg.Connection
) -> None:
    url, app = served
    deleted: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    query = """subscription { entryDeleted(filter: {actor: ["peskov"]}) {
                 id databaseId blogSlug headline publishedAt deletedAt } }"""
    tasks = [
        asyncio.create_task(_collect(url, query, deleted)),
        asyncio.create_task(
            _collect(url, 'subscription { entryUpdated(filter: {actor: ["peskov"]}) { databaseId } }', updated)
        ),
    ]
    try:
        await _until(lambda: app.state.live.subscriber_count == 2, "both subscriptions registered")
        # entries 0 and 5 name peskov as speaker; entry 1 names zelensky and un, not peskov
        peskov, other = world.entries[5], world.entries[1]
        last = await conn.fetchrow("SELECT headline, published_at FROM entries WHERE id = $1", peskov)
        await conn.execute("UPDATE entries SET headline = 'Changed' WHERE id = $1", world.entries[0])
        await conn.execute("DELETE FROM entries WHERE id = ANY($1)", [other, peskov])
        await _until(lambda: bool(deleted and updated), "the delete and the update arrived")
        await asyncio.sleep(0.3)  # nothing else arrives: the other entry did not match
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert updated == [{"entryUpdated": {"databaseId": world.entries[0]}}]  # a delete is not an update
    [event] = deleted
    gone = event["entryDeleted"]
    assert gone["id"] == to_global_id("Entry", peskov)  # the id a view holds for the entry
    assert (gone["databaseId"], gone["blogSlug"], gone["headline"]) == (peskov, "day-one", last["headline"])
    assert datetime.fromisoformat(gone["publishedAt"]) == last["published_at"]
    assert datetime.fromisoformat(gone["deletedAt"]) > last["published_at"]
