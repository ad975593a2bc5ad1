"""Integers from user input: only ASCII digits are numbers ('²'.isdigit() is true, int('²') fails,
int('\u0661\u0662') is 12), and anything else is a 400 problem naming the parameter, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from db import keys as keydb
from tests.api.live import live_server

SECRET = "hostile-input-secret"
PROBLEM = "application/problem+json"
NOT_ASCII = ["²", "\u0661\u0662", "\u0661", "\U0001d7d9", " 1", "1 ", "+1", "1_0", "12\n", "99999999999999999999"]
IN_PATH = [v for v in NOT_ASCII if "\n" not in v]  # a URL path cannot hold a newline


@pytest.fixture
async def client(db_dsn: str) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(Settings(secret=SECRET, anonymous_rate=100_000), db_dsn)) as client:
        yield client


@pytest.fixture
async def writer(conn: asyncpg.Connection) -> dict[str, str]:
    _, token = await keydb.create_key(
        conn, SECRET, name=f"h-{uuid.uuid4().hex[:6]}", scopes=("read", "write"), rate=100_000
    )
    return {"Authorization": f"Bearer {token}"}


def assert_named(response: Any, name: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)
    assert name in {e["name"] for e in response.json()["errors"]}, response.text


@pytest.mark.parametrize("value", IN_PATH)
@pytest.mark.parametrize("resource", ["sources", "actors", "locations"])
async def test_patch_path_ids_take_ascii_digits_only(
    client: AsyncTestClient[Any], writer: dict[str, str], resource: str, value: str
) -> None:
    r = await client.patch(f"/v1/{resource}/{value}", json={"name": "X"}, headers=writer)
    assert_named(r, "id")


@pytest.mark.parametrize("value", IN_PATH)
@pytest.mark.parametrize("resource", ["blogs", "actors", "locations", "sources"])
async def test_get_path_ids_take_ascii_digits_only(client: AsyncTestClient[Any], resource: str, value: str) -> None:
    assert_named(await client.get(f"/v1/{resource}/{value}"), "id")


@pytest.mark.parametrize("value", NOT_ASCII)
@pytest.mark.parametrize("name", ["after", "limit"])
async def test_change_feed_integers(client: AsyncTestClient[Any], name: str, value: str) -> None:
    assert_named(await client.get("/v1/changes", params={name: value}), name)


@pytest.mark.parametrize("value", NOT_ASCII)
async def test_page_limit(client: AsyncTestClient[Any], value: str) -> None:
    assert_named(await client.get("/v1/entries", params={"limit": value}), "limit")


def test_stream_resume_point(db_dsn: str, tmp_path: Path) -> None:
    # over a socket: a stream that opens never ends, so only its status is read
    with live_server(db_dsn, tmp_path) as base, httpx.Client(base_url=base, timeout=5) as http:
        for value in IN_PATH:
            tries: list[tuple[str, dict[str, Any]]] = [("last_event_id", {"params": {"last_event_id": value}})]
            if value == value.strip():  # a header value cannot start or end with a space
                tries.append(("Last-Event-ID", {"headers": {"Last-Event-ID": value.encode()}}))
            for name, kwargs in tries:
                with http.stream("GET", "/v1/stream/entries", **kwargs) as r:  # type: ignore[arg-type]
                    assert r.status_code != 200, f"{name}={value!r} opened a stream"
                    r.read()
                    assert_named(r, name)


@pytest.mark.parametrize("value", ["²", "١٢", "99999999999999999999"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_entry_path_ids(client: AsyncTestClient[Any], writer: dict[str, str], method: str, value: str) -> None:
    r = await client.request(method, f"/v1/entries/{value}", json={"headline": "x"}, headers=writer)
    assert r.status_code in (400, 404), r.text
    assert r.headers["content-type"].startswith(PROBLEM)


async def test_good_integers_still_work(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/v1/changes", params={"after": "0", "limit": "5"})).status_code == 200
    assert (await client.get("/v1/entries", params={"limit": "7"})).json()["page"]["limit"] == 7
    r = await client.get("/v1/actors/123")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)
