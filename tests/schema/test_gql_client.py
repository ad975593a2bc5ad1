"""A real GraphQL client (gql, over httpx) against the app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport

from tests.schema.conftest import SECRET, World


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def server_url(db_dsn: str, world: World) -> AsyncIterator[str]:
    from api.app import create_app
    from api.settings import Settings

    port = _free_port()
    config = uvicorn.Config(
        create_app(Settings(secret=SECRET, anonymous_rate=100_000), db_dsn),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task


async def test_gql_client_pages_through_a_filtered_list(server_url: str) -> None:
    query = gql(
        """query Videos($after: String) {
             entries(first: 5, after: $after, filter: {kind: [VIDEO]}) {
               pageInfo { hasNextPage endCursor } nodes { databaseId kind actors { role actor { slug } } } } }"""
    )
    async with Client(transport=HTTPXAsyncTransport(url=server_url), fetch_schema_from_transport=True) as session:
        seen: list[int] = []
        after = None
        while True:
            query.variable_values = {"after": after}
            result = await session.execute(query)
            conn = result["entries"]
            seen += [n["databaseId"] for n in conn["nodes"]]
            assert {n["kind"] for n in conn["nodes"]} == {"VIDEO"}
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        assert len(seen) == 12 == len(set(seen))


async def test_gql_client_sees_error_codes(server_url: str) -> None:
    async with Client(transport=HTTPXAsyncTransport(url=server_url)) as session:
        with pytest.raises(TransportQueryError) as raised:
            await session.execute(gql('{ source(slug: "nobody") { name } }'))
    assert raised.value.errors is not None
    assert raised.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
