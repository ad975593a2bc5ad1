"""Browser-ready by default: anonymous reads answer CORS for any page; keys and writes keep their origins."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from api.app import create_app
from tests.api.test_auth import APP_ORIGIN, client, make_key, settings

__all__ = ["client"]

ANY_PAGE = "https://some-newsroom.example"


async def test_anonymous_reads_are_readable_by_any_page_without_credentials(client: AsyncTestClient[Any]) -> None:
    for headers in ({"Origin": ANY_PAGE}, {"Origin": "null"}, {}):
        response = await client.get("/v1/entries", params={"limit": 1}, headers=headers)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
        assert "etag" in response.headers["access-control-expose-headers"].lower()
    # a problem is readable too, so the page can show why
    missing = await client.get("/v1/entries/999999", headers={"Origin": ANY_PAGE})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == "*"
    head = await client.head("/v1/blogs", headers={"Origin": ANY_PAGE})
    assert head.headers["access-control-allow-origin"] == "*"


async def test_a_preflight_for_an_anonymous_read_is_allowed_from_any_page(client: AsyncTestClient[Any]) -> None:
    for method, asked in (("GET", "if-none-match"), ("GET", "Last-Event-ID, Accept"), ("HEAD", "")):
        preflight = {"Origin": ANY_PAGE, "Access-Control-Request-Method": method}
        if asked:
            preflight["Access-Control-Request-Headers"] = asked
        response = await client.options("/v1/stream/entries", headers=preflight)
        assert response.status_code == 204, (method, asked)
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["access-control-allow-methods"] == "GET, HEAD"
        assert "last-event-id" in response.headers["access-control-allow-headers"]
        assert "access-control-allow-credentials" not in response.headers
    # asking to send a key, or to write, still needs an allowed origin
    for method, asked in (("GET", "authorization"), ("GET", "x-api-key"), ("POST", "content-type"), ("DELETE", "")):
        preflight = {"Origin": ANY_PAGE, "Access-Control-Request-Method": method}
        if asked:
            preflight["Access-Control-Request-Headers"] = asked
        refused = await client.options("/v1/entries", headers=preflight)
        assert refused.status_code == 403, (method, asked)
        assert "access-control-allow-origin" not in refused.headers


async def test_keyed_and_write_requests_keep_their_origins(
    client: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    server = await make_key(conn, "read")
    browser = await make_key(conn, "read", origins=[APP_ORIGIN])
    keyed = await client.get("/v1/entries", headers={"Origin": ANY_PAGE, "X-API-Key": server})
    assert keyed.status_code == 200
    assert "access-control-allow-origin" not in keyed.headers
    own = await client.get("/v1/entries", headers={"Origin": APP_ORIGIN, "X-API-Key": browser})
    assert own.headers["access-control-allow-origin"] == APP_ORIGIN
    elsewhere = await client.get("/v1/entries", headers={"Origin": ANY_PAGE, "X-API-Key": browser})
    assert elsewhere.status_code == 403
    assert "access-control-allow-origin" not in elsewhere.headers
    write = await client.post("/v1/entries", json={}, headers={"Origin": ANY_PAGE})
    assert write.status_code == 401
    assert "access-control-allow-origin" not in write.headers


async def test_with_keys_required_a_page_can_read_the_401(db_dsn: str) -> None:
    async with AsyncTestClient(create_app(settings(require_key=True), db_dsn)) as client:
        response = await client.get("/v1/entries", headers={"Origin": ANY_PAGE})
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == "*"
