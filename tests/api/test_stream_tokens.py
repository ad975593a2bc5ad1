"""Stream tokens: a key buys a short-lived token that opens /v1/stream/* as `?token=`, and nothing else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from api import stream_tokens
from api.app import create_app
from db import keys as keydb
from tests.api.test_auth import APP_ORIGIN, PEPPER, assert_problem, key_id_of, make_key, settings

STREAM = "/v1/stream/entries"


@pytest.fixture
async def locked(db_dsn: str) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app with SITREP_REQUIRE_KEY on: a stream opens only with a key or a token."""
    async with AsyncTestClient(create_app(settings(require_key=True), db_dsn)) as client:
        yield client


async def _token(client: AsyncTestClient[Any], key: str) -> dict[str, Any]:
    response = await client.post("/v1/stream/tokens", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def _opens(client: AsyncTestClient[Any], token: str, **headers: str) -> int:
    # HEAD runs the GET's checks and answers its status without holding the stream open
    response = await client.head(STREAM, params={"token": token}, headers=headers)
    return response.status_code


async def test_a_key_gets_a_token_that_opens_streams_for_a_few_minutes(
    locked: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    key = await make_key(conn, "read")
    issued = await _token(locked, key)
    assert set(issued) == {"token", "expires_at"}
    assert issued["token"].startswith("st_")
    assert key.split("_")[2] not in issued["token"]  # the key's secret never appears in it
    assert issued["expires_at"].endswith("Z")
    left = datetime.fromisoformat(issued["expires_at"]).timestamp() - time.time()
    assert stream_tokens.TTL - 5 < left <= stream_tokens.TTL

    assert (await locked.head(STREAM)).status_code == 401
    opened = await locked.head(STREAM, params={"token": issued["token"]})
    assert opened.status_code == 200
    assert opened.headers["content-type"].startswith("text/event-stream")
    assert opened.headers["ratelimit-limit"] == "1000"  # charged to the key


async def test_tokens_are_refused_when_forged_expired_misplaced_or_mixed_with_a_key(
    locked: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    key = await make_key(conn, "read")
    token = (await _token(locked, key))["token"]
    stored = await keydb.find_key(conn, key_id_of(key))
    assert stored is not None
    past = stream_tokens.issue(PEPPER, key_id_of(key), stored.secret_hash, int(time.time()) - 1)
    other_secret = stream_tokens.issue("not-our-secret", key_id_of(key), stored.secret_hash, int(time.time()) + 60)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad, says in ((past, "expired"), (other_secret, "unknown"), (tampered, "unknown"), ("st_nope", "malformed")):
        response = await locked.get(STREAM, params={"token": bad})
        assert says in assert_problem(response, 401)["detail"], bad
    # only on streams: not a credential on other reads, nor for minting more tokens
    assert_problem(await locked.get("/v1/entries", params={"token": token}), 401)
    assert_problem(await locked.post("/v1/stream/tokens", params={"token": token}), 401)
    both = await locked.get(STREAM, params={"token": token}, headers={"X-API-Key": key})
    assert "not both" in assert_problem(both, 401)["detail"]


async def test_scopes_and_key_state_decide(locked: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    assert_problem(await locked.post("/v1/stream/tokens"), 401)
    writer_only = await make_key(conn, "write")
    response = await locked.post("/v1/stream/tokens", headers={"X-API-Key": writer_only})
    assert_problem(response, 403)

    revoked = await make_key(conn, "read")
    token = (await _token(locked, revoked))["token"]
    assert await _opens(locked, token) == 200
    await keydb.revoke_key(conn, key_id_of(revoked))
    for _ in range(40):  # every instance hears of the revocation at commit (LISTEN)
        if await _opens(locked, token) == 401:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("a revoked key's token still opened a stream after 2 s")

    rotated = await make_key(conn, "read")
    token = (await _token(locked, rotated))["token"]
    await keydb.rotate_key(conn, PEPPER, key_id_of(rotated))
    for _ in range(40):
        if await _opens(locked, token) == 401:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("a rotated key's old token still opened a stream after 2 s")


async def test_a_browser_keys_token_keeps_its_origins(locked: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    browser = await make_key(conn, "read", origins=[APP_ORIGIN])
    response = await locked.post("/v1/stream/tokens", headers={"X-API-Key": browser, "Origin": APP_ORIGIN})
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    token = response.json()["token"]
    own = await locked.head(STREAM, params={"token": token}, headers={"Origin": APP_ORIGIN})
    assert own.status_code == 200
    assert own.headers["access-control-allow-origin"] == APP_ORIGIN
    assert await _opens(locked, token, Origin="https://elsewhere.example") == 403


def test_a_token_is_bound_to_its_keys_stored_secret_hash() -> None:
    token = stream_tokens.issue("s", "abcdefghijkl", b"h" * 32, 2_000_000_000)
    assert stream_tokens.parse(token) == ("abcdefghijkl", 2_000_000_000, token.rsplit(".", 1)[1])
    assert stream_tokens.signed("s", "abcdefghijkl", 2_000_000_000, token.rsplit(".", 1)[1], b"h" * 32)
    assert not stream_tokens.signed("s", "abcdefghijkl", 2_000_000_000, token.rsplit(".", 1)[1], b"x" * 32)
