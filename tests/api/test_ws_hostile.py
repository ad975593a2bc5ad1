"""The GraphQL socket (graphql-transport-ws) under bad input and a lost database: coded errors,
a retryable close (1013 Try Again Later) rather than 4500, and a cap on subscriptions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec
import pytest
import websockets

from db import keys as keydb
from tests.api.live import live_server
from tests.api.test_rest_read import Proxy

SECRET = "live-server-test-secret"  # the live server's
PROTOCOL = [websockets.Subprotocol("graphql-transport-ws")]


async def _key(conn: asyncpg.Connection) -> str:
    _, token = await keydb.create_key(conn, SECRET, name=f"w-{uuid.uuid4().hex[:6]}", scopes=("read",), rate=10**6)
    return token


def _send(ws: Any, message: dict[str, Any]) -> Any:
    return ws.send(msgspec.json.encode(message).decode())


async def _recv(ws: Any) -> dict[str, Any]:
    answer: dict[str, Any] = msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5))
    return answer


@pytest.fixture
async def server(db_dsn: str, tmp_path: Path) -> AsyncIterator[str]:
    with live_server(db_dsn, tmp_path, SITREP_WS_MAX_SUBSCRIPTIONS="3") as base:
        yield base.replace("http://", "ws://") + "/graphql"


async def test_queries_and_mutations_over_the_socket_are_coded_errors(server: str, conn: asyncpg.Connection) -> None:
    async with websockets.connect(server, subprotocols=PROTOCOL) as ws:
        await _send(ws, {"type": "connection_init", "payload": {"X-API-Key": await _key(conn)}})
        assert await _recv(ws) == {"type": "connection_ack"}
        for op_id, query in (
            ("q", "{ entries(first: 1) { nodes { id } } }"),
            ("m", 'mutation { deleteEntry(id: "1") { id } }'),
            ("n", "query A { entries { totalCount } } subscription B { entryPublished { id } }"),
        ):
            await _send(ws, {"type": "subscribe", "id": op_id, "payload": {"query": query}})
            answer = await _recv(ws)
            assert answer["id"] == op_id
            assert answer["type"] == "error", answer
            assert [e["extensions"]["code"] for e in answer["payload"]] == ["BAD_USER_INPUT"], answer
        # the socket stays usable
        await _send(ws, {"type": "ping"})
        assert await _recv(ws) == {"type": "pong"}


async def test_subscriptions_per_socket_are_capped(server: str, conn: asyncpg.Connection) -> None:
    async with websockets.connect(server, subprotocols=PROTOCOL) as ws:
        await _send(ws, {"type": "connection_init", "payload": {"X-API-Key": await _key(conn)}})
        assert await _recv(ws) == {"type": "connection_ack"}
        query = {"query": "subscription { entryPublished { id } }"}
        for i in range(3):
            await _send(ws, {"type": "subscribe", "id": str(i), "payload": query})
        await _send(ws, {"type": "subscribe", "id": "3", "payload": query})
        answer = await _recv(ws)
        assert answer["id"] == "3"
        assert answer["type"] == "error"
        assert answer["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        # completing one frees its place
        await _send(ws, {"type": "complete", "id": "0"})
        await asyncio.sleep(0.2)
        await _send(ws, {"type": "subscribe", "id": "4", "payload": query})
        await _send(ws, {"type": "ping"})
        assert await _recv(ws) == {"type": "pong"}


async def test_connection_init_while_the_database_is_down_is_a_retryable_close(
    db_dsn: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    token = await _key(conn)
    parts = urlsplit(db_dsn)
    proxy = Proxy(db_dsn)
    port = proxy.start()
    dsn = urlunsplit((parts.scheme, f"{parts.username}@127.0.0.1:{port}", parts.path, "", ""))
    try:
        with live_server(dsn, tmp_path) as base:
            proxy.cut()
            async with websockets.connect(base.replace("http://", "ws://") + "/graphql", subprotocols=PROTOCOL) as ws:
                await _send(ws, {"type": "connection_init", "payload": {"X-API-Key": token}})
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013  # Try Again Later, not 4500
    finally:
        proxy.stop()
