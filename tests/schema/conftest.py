"""A small world for the GraphQL tests, and ways to run queries: in process and over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from db.page import Cursors
from schema.context import Db, GraphContext
from schema.execute import Outcome, execute
from tests.db import factories as f

SECRET = "graphql-tests"


class World(msgspec.Struct):
    blogs: dict[str, int]
    actors: dict[str, int]
    locations: dict[str, int]
    sources: dict[str, int]
    entries: list[int]  # oldest first


@pytest.fixture
async def world(conn: asyncpg.Connection) -> World:
    """2 blogs, 5 actors, a place hierarchy, 3 sources and 120 entries linked round-robin."""
    blogs = {"day-one": await f.blog(conn, "day-one"), "day-two": await f.blog(conn, "day-two", status="closed")}
    actors = {
        "peskov": await f.actor(conn, "peskov", "Dmitry Peskov", aliases=["Песков"], country="RU"),
        "zelensky": await f.actor(conn, "zelensky", "Volodymyr Zelensky", country="UA"),
        "kremlin": await f.actor(conn, "kremlin", "Kremlin", kind="organization", country="RU"),
        "un": await f.actor(conn, "un", "United Nations", kind="organization"),
        "nato": await f.actor(conn, "nato", "NATO", kind="military"),
    }
    ukraine = await f.location(conn, "ukraine", 49.0, 32.0, kind="country", country="UA")
    crimea = await f.location(conn, "crimea", 45.3, 34.4, kind="region", parent=ukraine, country="UA")
    sevastopol = await f.location(conn, "sevastopol", 44.6, 33.5, parent=crimea, country="UA")
    kyiv = await f.location(conn, "kyiv", 50.45, 30.52, parent=ukraine, country="UA")
    moscow = await f.location(conn, "moscow", 55.75, 37.62, kind="city", country="RU")
    locations = {"ukraine": ukraine, "crimea": crimea, "sevastopol": sevastopol, "kyiv": kyiv, "moscow": moscow}
    sources = {
        "tass": await f.source(conn, "tass"),
        "reuters": await f.source(conn, "reuters"),
        "telegram": await f.source(conn, "telegram", kind="social"),
    }
    actor_ids, location_ids, source_ids = list(actors.values()), list(locations.values()), list(sources.values())
    entries = []
    for i in range(120):
        entries.append(
            await f.entry(
                conn,
                blogs["day-one"] if i < 80 else blogs["day-two"],
                f.at(i * 7),
                headline=f"Update {i}: " + ("drone strike" if i % 4 == 0 else "talks resume"),
                body=[f"Paragraph {i}.", "Second paragraph."],
                kind="video" if i % 10 == 0 else "post",
                actors={actor_ids[i % 5]: "speaker", actor_ids[(i + 2) % 5]: "mentioned"},
                locations=[location_ids[i % 5]],
                sources=[source_ids[i % 3]] if i % 6 else [],
                media=[{"kind": "embed", "embed_author": "Someone", "embed_handle": "@someone"}] if i % 15 == 0 else [],
            )
        )
    return World(blogs=blogs, actors=actors, locations=locations, sources=sources, entries=entries)


class Runner:
    """Runs GraphQL in process over the test connection, counting statements sent."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.statements: list[str] = []
        conn.add_query_logger(lambda record: self.statements.append(record.query))

    async def outcome(
        self, query: str, variables: dict[str, Any] | None = None, *, fast: bool = True, compiled: bool = True
    ) -> Outcome:
        ctx = GraphContext(Db(conn=self.conn), Cursors(SECRET))
        return await execute(ctx, query, variables, use_fast=fast, use_compiled=compiled)

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, *, fast: bool = True
    ) -> dict[str, Any]:
        return (await self.outcome(query, variables, fast=fast)).body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = await self(query, variables)
        assert "errors" not in body, body
        return body["data"]


@pytest.fixture
def gql(conn: asyncpg.Connection) -> Runner:
    return Runner(conn)


@pytest.fixture
async def client(db_dsn: str) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    from api.app import create_app  # the whole app: imported only by the tests that need it
    from api.settings import Settings

    async with AsyncTestClient(create_app(Settings(secret=SECRET), db_dsn)) as client:
        yield client
