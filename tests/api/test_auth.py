"""API keys over HTTP: every bad credential is a 401 problem, scopes, admin routes, CORS, usage."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth import Forbidden, Unauthenticated, authenticate_token
from api.settings import Settings
from db import keys as keydb

PEPPER = "auth-test-pepper"
APP_ORIGIN = "https://app.example.org"
GLOBAL_ORIGIN = "https://global.example.org"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret": PEPPER,
        "anonymous_rate": 1000,
        "cors_origins": (GLOBAL_ORIGIN,),
        "redis_url": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def client(db_dsn: str) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(settings(), db_dsn)) as client:
        yield client


async def make_key(conn: asyncpg.Connection, *scopes: str, rate: int = 1000, **kwargs: Any) -> str:
    _, token = await keydb.create_key(
        conn, PEPPER, name=f"k-{uuid.uuid4().hex[:6]}", scopes=scopes, rate=rate, **kwargs
    )
    return token


def key_id_of(token: str) -> str:
    parsed = keydb.parse_token(token)
    assert parsed is not None
    return parsed[0]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def assert_graphql_error(response: httpx.Response, status: int, code: str) -> None:
    """/graphql refuses in GraphQL's shape (clients there read extensions.code), with the same status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == [code]
    assert errors[0]["message"]


async def bad_credentials(conn: asyncpg.Connection) -> dict[str, dict[str, str]]:
    good = await make_key(conn, "read")
    key_id, secret = keydb.parse_token(good) or ("", "")
    expired = await make_key(conn, "read")
    await conn.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", key_id_of(expired))
    revoked = await make_key(conn, "read")
    await keydb.revoke_key(conn, key_id_of(revoked))
    wrong_secret = f"sk_{key_id}_{'x' * 40}"
    return {
        "empty bearer": {"Authorization": "Bearer "},
        "bearer without token": {"Authorization": "Bearer"},
        "empty x-api-key": {"X-API-Key": ""},
        "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
        "wrong prefix": {"X-API-Key": "pk" + good[2:]},
        "truncated": {"X-API-Key": good[:-1]},
        "bad id": {"X-API-Key": f"sk_zzzzzzzzzzzz_{secret}"},
        "wrong secret": {"Authorization": f"Bearer {wrong_secret}"},
        "expired": {"X-API-Key": expired},
        "revoked": {"Authorization": f"Bearer {revoked}"},
        "two different keys": {"Authorization": f"Bearer {good}", "X-API-Key": expired},
    }


async def test_every_bad_credential_is_a_401_problem_that_does_not_echo_the_key(
    client: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    for case, headers in (await bad_credentials(conn)).items():
        for path in ("/v1/usage", "/v1/no-such-route"):
            response = await client.get(path, headers=headers)
            body = assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer"), case
            for value in headers.values():
                secretish = value.removeprefix("Bearer ").removeprefix("Basic ")
                if len(secretish) > 12:
                    assert secretish not in response.text, case
                    assert secretish not in str(response.headers), case
            assert body["detail"], case


async def test_a_good_key_works_by_either_header_and_says_its_rate(
    client: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    token = await make_key(conn, "read", rate=50)
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-API-Key": token}, {"authorization": f"bearer {token}"}):
        response = await client.get("/v1/usage", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-limit"] == "50"
        assert int(response.headers["ratelimit-remaining"]) < 50
        assert int(response.headers["ratelimit-reset"]) >= 1
        assert response.json()["key_id"] == key_id_of(token)


async def test_anonymous_callers_read_at_the_anonymous_rate_and_cannot_write(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/v1/no-such-route")
    assert response.status_code == 404
    assert response.headers["ratelimit-limit"] == "1000"
    assert "ratelimit-limit" not in (await client.get("/health")).headers
    assert_problem(await client.get("/v1/usage"), 401)
    for method in ("POST", "PATCH", "DELETE"):
        response = await client.request(method, "/v1/keys", json={"name": "x"})
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == 'Bearer realm="sitrep"'
    response = await client.post("/v1/entries", json={"headline": "x"})
    assert_problem(response, 401)


async def test_require_key_refuses_anonymous_reads_but_not_health_or_docs(
    db_dsn: str, conn: asyncpg.Connection
) -> None:
    token = await make_key(conn, "read")
    async with AsyncTestClient(create_app(settings(require_key=True), db_dsn)) as client:
        assert_problem(await client.get("/v1/entries"), 401)
        assert_graphql_error(await client.post("/graphql", json={"query": "{ __typename }"}), 401, "UNAUTHENTICATED")
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/docs")).status_code == 200
        assert (await client.get("/graphql", headers={"Accept": "text/html"})).status_code == 200
        assert_graphql_error(await client.get("/graphql", params={"query": "{ __typename }"}), 401, "UNAUTHENTICATED")
        bad_key = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"X-API-Key": "sk_x_y"})
        assert_graphql_error(bad_key, 401, "UNAUTHENTICATED")
        assert bad_key.headers["www-authenticate"].startswith("Bearer")
        assert (await client.get("/v1/usage", headers={"X-API-Key": token})).status_code == 200


async def test_scopes_a_read_key_cannot_administer_or_write(
    client: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    read = await make_key(conn, "read")
    write = await make_key(conn, "read", "write")
    for token in (read, write):
        headers = {"X-API-Key": token}
        assert_problem(await client.get("/v1/keys", headers=headers), 403)
        assert_problem(await client.post("/v1/keys", json={"name": "x"}, headers=headers), 403)
    body = {"blog": "x", "published_at": "2026-01-01T00:00:00Z", "headline": "h", "body": ["b"]}
    assert_problem(await client.post("/v1/entries", json=body, headers={"X-API-Key": read}), 403)
    assert_problem(await client.post("/v1/entries", json=body), 401)
    # with the scope the guard lets it through (the unknown blog is then the handler's 4xx)
    allowed = await client.post("/v1/entries", json=body, headers={"X-API-Key": write})
    assert allowed.status_code not in {401, 403}


async def test_admin_creates_lists_rotates_and_revokes_keys(
    client: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    admin = {"X-API-Key": await make_key(conn, "read", "admin")}
    created = await client.post(
        "/v1/keys",
        json={"name": "partner", "scopes": ["read", "write"], "rate": 120, "origins": [APP_ORIGIN]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["scopes"] == ["read", "write"]
    assert new["state"] == "active"
    token = new["key"]
    assert (await client.get("/v1/usage", headers={"X-API-Key": token})).status_code == 200

    listing = await client.get("/v1/keys", headers=admin)
    assert listing.status_code == 200
    assert new["id"] in {k["id"] for k in listing.json()["data"]}
    assert token not in listing.text
    assert token.rsplit("_", 1)[1] not in listing.text
    assert "key" not in listing.json()["data"][0]
    one = await client.get(f"/v1/keys/{new['id']}", headers=admin)
    assert one.json()["rate"] == 120

    rotated = await client.post(f"/v1/keys/{new['id']}/rotate", headers=admin)
    assert rotated.status_code == 200
    new_token = rotated.json()["key"]
    assert new_token != token
    assert rotated.json()["id"] == new["id"]
    assert_problem(await client.get("/v1/usage", headers={"X-API-Key": token}), 401)
    assert (await client.get("/v1/usage", headers={"X-API-Key": new_token})).status_code == 200

    revoked = await client.delete(f"/v1/keys/{new['id']}", headers=admin)
    assert revoked.status_code == 204
    assert_problem(await client.get("/v1/usage", headers={"X-API-Key": new_token}), 401)
    state = (await client.get(f"/v1/keys/{new['id']}", headers=admin)).json()["state"]
    assert state == "revoked"


async def test_the_key_list_is_paged_like_every_list(client: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    admin = {"X-API-Key": await make_key(conn, "read", "admin")}
    for _ in range(6):
        await make_key(conn, "read")
    expected = [r["id"] for r in await conn.fetch("SELECT id FROM api_keys ORDER BY created_at, id")]
    assert len(expected) == 7

    first = await client.get("/v1/keys", params={"limit": 3, "count": "true"}, headers=admin)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["page"]["limit"] == 3
    assert body["page"]["total"] == 7
    assert body["page"]["next_cursor"]
    assert 'rel="next"' in first.headers["link"]
    seen = [k["id"] for k in body["data"]]
    response = first
    while "next" in response.links:
        response = await client.get(response.links["next"]["url"], headers=admin)
        assert response.status_code == 200, response.text
        seen += [k["id"] for k in response.json()["data"]]
    assert seen == expected  # every key once, oldest first
    assert response.json()["page"]["next_cursor"] is None

    # the default page holds them all; no total unless count=true
    everything = (await client.get("/v1/keys", headers=admin)).json()
    assert [k["id"] for k in everything["data"]] == expected
    assert everything["page"] == {"limit": 50, "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"count": "maybe"}, "count"),
        ({"sort": "name"}, "sort"),
    ],
)
async def test_bad_key_list_parameters_are_400_problems_naming_them(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, params: dict[str, str], name: str
) -> None:
    admin = {"X-API-Key": await make_key(conn, "read", "admin")}
    problem = assert_problem(await client.get("/v1/keys", params=params, headers=admin), 400)
    assert [e["name"] for e in problem["errors"]] == [name]


async def test_a_cursor_from_another_list_is_refused_by_the_key_list(
    client: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    admin = {"X-API-Key": await make_key(conn, "read", "admin")}
    await conn.executemany("INSERT INTO actors (slug, name, kind) VALUES ($1, $1, 'person')", [("a-one",), ("a-two",)])
    await make_key(conn, "read")
    actors_cursor = (await client.get("/v1/actors", params={"limit": 1})).json()["page"]["next_cursor"]
    keys_cursor = (await client.get("/v1/keys", params={"limit": 1}, headers=admin)).json()["page"]["next_cursor"]
    problem = assert_problem(await client.get("/v1/keys", params={"cursor": actors_cursor}, headers=admin), 400)
    assert [e["name"] for e in problem["errors"]] == ["cursor"]
    problem = assert_problem(await client.get("/v1/actors", params={"cursor": keys_cursor}), 400)
    assert [e["name"] for e in problem["errors"]] == ["cursor"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["root"]}, "scopes"),
        ({"name": "x", "rate": 0}, "rate"),
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "x", "origins": ["not an origin"]}, "origins"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ],
)
async def test_bad_key_settings_are_a_400_naming_the_field(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, body: dict[str, Any], field: str
) -> None:
    admin = {"X-API-Key": await make_key(conn, "admin")}
    response = await client.post("/v1/keys", json=body, headers=admin)
    problem = assert_problem(response, 400)
    assert [e["name"] for e in problem["errors"]] == [field]
    assert await conn.fetchval("SELECT count(*) FROM api_keys") == 1


async def test_unknown_key_ids_are_404_problems(client: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    admin = {"X-API-Key": await make_key(conn, "admin")}
    assert_problem(await client.delete("/v1/keys/zzzzzzzzzzzz", headers=admin), 404)
    assert_problem(await client.post("/v1/keys/zzzzzzzzzzzz/rotate", headers=admin), 404)


async def test_cors_global_origins_and_a_browser_keys_own_origin(
    client: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    browser = await make_key(conn, "read", origins=[APP_ORIGIN])
    server = await make_key(conn, "read")
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key"}

    for origin in (APP_ORIGIN, GLOBAL_ORIGIN):
        response = await client.options("/v1/usage", headers={"Origin": origin, **preflight})
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == origin
        assert "x-api-key" in response.headers["access-control-allow-headers"].lower()
    response = await client.options("/v1/usage", headers={"Origin": "https://evil.example", **preflight})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers

    ok = await client.get("/v1/usage", headers={"Origin": APP_ORIGIN, "X-API-Key": browser})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "ratelimit-remaining" in ok.headers["access-control-expose-headers"].lower()
    elsewhere = await client.get("/v1/usage", headers={"Origin": "https://evil.example", "X-API-Key": browser})
    assert_problem(elsewhere, 403)
    assert "access-control-allow-origin" not in elsewhere.headers
    # from the globally allowed origin a browser key is still only good on its own origin
    assert_problem(await client.get("/v1/usage", headers={"Origin": GLOBAL_ORIGIN, "X-API-Key": browser}), 403)
    # a server key has no origin list: a browser on a global origin may use it, others get no CORS header
    anywhere = await client.get("/v1/usage", headers={"Origin": GLOBAL_ORIGIN, "X-API-Key": server})
    assert anywhere.headers["access-control-allow-origin"] == GLOBAL_ORIGIN
    other = await client.get("/v1/usage", headers={"Origin": "https://evil.example", "X-API-Key": server})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


async def test_preflight_for_a_new_browser_key_is_allowed_once_it_exists(
    client: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    import asyncio

    preflight = {
        "Origin": "https://late.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    assert (await client.options("/v1/usage", headers=preflight)).status_code == 403
    await make_key(conn, "read", origins=["https://late.example"])
    for _ in range(40):
        if (await client.options("/v1/usage", headers=preflight)).status_code == 204:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the new key's origin was not allowed within 2 s")


async def test_usage_counts_this_days_requests(client: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    token = await make_key(conn, "read", rate=100)
    for _ in range(4):
        await client.get("/v1/no-such-route", headers={"X-API-Key": token})
    response = await client.get("/v1/usage", headers={"X-API-Key": token})
    body = response.json()
    assert body["rate"]["limit"] == 100
    assert body["rate"]["remaining"] == 95
    assert body["days"][0]["date"] == datetime.now(UTC).date().isoformat()
    assert body["days"][0]["requests"] == 5
    assert_problem(await client.get("/v1/usage", params={"days": 0}, headers={"X-API-Key": token}), 400)


async def test_last_used_is_recorded(client: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    import asyncio

    token = await make_key(conn, "read")
    key_id = key_id_of(token)
    await client.get("/v1/usage", headers={"X-API-Key": token})
    for _ in range(40):
        if await conn.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key_id) is not None:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("last_used_at was not written")


async def test_websocket_tokens_authenticate_like_headers(db_dsn: str, conn: asyncpg.Connection) -> None:
    from types import SimpleNamespace

    from api.auth import AuthServices
    from db.pool import create_pool

    pool = await create_pool(db_dsn, min_size=1, max_size=2)
    services = AuthServices(settings(), pool, db_dsn)
    await services.start()
    try:
        state = SimpleNamespace(auth=services)
        token = await make_key(conn, "read", "write", rate=33, origins=[APP_ORIGIN])
        caller = await authenticate_token(state, token, "10.0.0.1", origin=APP_ORIGIN)
        assert (caller.key_id, caller.rate, caller.client) == (key_id_of(token), 33, "10.0.0.1")
        assert caller.scopes == {"read", "write"}
        for bad in ("", "nonsense", token[:-1] + ("a" if token[-1] != "a" else "b")):
            with pytest.raises(Unauthenticated):
                await authenticate_token(state, bad)
        with pytest.raises(Forbidden):
            await authenticate_token(state, token, origin="https://evil.example")
    finally:
        await services.aclose()
        await pool.close()


async def test_expiry_is_checked_on_each_request_not_only_when_cached(
    client: AsyncTestClient[Any], conn: asyncpg.Connection
) -> None:
    import asyncio

    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    _, token = await keydb.create_key(conn, PEPPER, name="brief", scopes=["read"], rate=100, expires_at=soon)
    assert (await client.get("/v1/usage", headers={"X-API-Key": token})).status_code == 200
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    assert_problem(await client.get("/v1/usage", headers={"X-API-Key": token}), 401)


async def test_refusals_are_counted_in_metrics_without_any_key(db_dsn: str, conn: asyncpg.Connection) -> None:
    token = await make_key(conn, "read", rate=1)
    async with AsyncTestClient(create_app(settings(), db_dsn)) as client:
        wrong = f"sk_{key_id_of(token)}_{'Z' * 40}"
        assert (await client.get("/v1/usage", headers={"X-API-Key": wrong})).status_code == 401
        assert (await client.get("/v1/usage", headers={"X-API-Key": token})).status_code == 200
        assert (await client.get("/v1/usage", headers={"X-API-Key": token})).status_code == 429
        metrics = (await client.get("/metrics")).text
    assert 'sitrep_auth_refused_total{status="401"} 1.0' in metrics
    assert 'sitrep_auth_refused_total{status="429"} 1.0' in metrics
    assert "sitrep_ratelimit_degraded 0.0" in metrics
    assert "sitrep_key_cache_listening 1.0" in metrics
    assert key_id_of(token) not in metrics
    assert token.rsplit("_", 1)[1] not in metrics


async def test_when_the_listen_connection_is_lost_lookups_bypass_the_cache_until_it_is_back(
    db_dsn: str, conn: asyncpg.Connection
) -> None:
    import asyncio

    from api.auth import AuthServices
    from db.pool import create_pool

    pool = await create_pool(db_dsn, min_size=1, max_size=2)
    services = AuthServices(settings(), pool, db_dsn)
    await services.start()
    try:
        token = await make_key(conn, "read")
        assert (await services.caller_for_token(token, "")).key_id == key_id_of(token)  # cached now
        listener_pid = services.keyring._listener.get_server_pid()  # type: ignore[union-attr]
        await conn.execute("SELECT pg_terminate_backend($1)", listener_pid)
        keyring = services.keyring
        for _ in range(200):  # noticed: the connection is gone, or already replaced
            if keyring._listener is None or keyring._listener.is_closed():
                break
            if keyring._listener.get_server_pid() != listener_pid:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the lost LISTEN connection went unnoticed for 2 s")
        # a change nobody announced (the notification was lost with the connection) is still seen
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", key_id_of(token))
        with pytest.raises(Unauthenticated):
            await services.caller_for_token(token, "")
        for _ in range(100):  # the watcher reconnects at once
            if keyring.listening:
                break
            await asyncio.sleep(0.02)
        assert keyring.listening
        assert keyring._listener is not None
        assert keyring._listener.get_server_pid() != listener_pid
        other = await make_key(conn, "read")
        assert (await services.caller_for_token(other, "")).key_id == key_id_of(other)
    finally:
        await services.aclose()
        await pool.close()


async def test_the_cli_refuses_bad_input_in_one_line_and_prints_a_new_key_last(db_dsn: str, tmp_path: Any) -> None:
    import asyncio
    import os
    import sys

    env = {**os.environ, "DATABASE_URL": db_dsn, "SITREP_SECRET": PEPPER, "SITREP_DATA_DIR": str(tmp_path)}

    async def sitrep(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.cli", "keys", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    for args, message in [
        (("create", "--name", "x", "--scopes", "read,root"), "unknown scope 'root'"),
        (("create", "--name", "x", "--rate", "0"), "rate must be"),
        (("create", "--name", "x", "--expires", "yesterday"), "not an ISO 8601 time"),
        (("create", "--name", "x", "--origin", "example.org"), "not an origin"),
        (("revoke", "zzzzzzzzzzzz"), "no key"),
        (("rotate", "zzzzzzzzzzzz"), "no key"),
    ]:
        code, out, err = await sitrep(*args)
        assert code != 0, args
        assert message in err, (args, err)
        assert "Traceback" not in err
    code, out, _ = await sitrep(
        "create", "--name", "Partner B", "--scopes", "read,write", "--rate", "600",
        "--expires", "2099-01-01T00:00Z", "--origin", "https://b.example",
    )  # fmt: skip
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert keydb.parse_token(token) is not None
    code, listing, _ = await sitrep("list")
    assert key_id_of(token) in listing
    assert "read,write" in listing
    assert "active" in listing
    assert token.rsplit("_", 1)[1] not in listing


async def test_an_address_sending_bad_keys_is_held_off_before_any_lookup(db_dsn: str, conn: asyncpg.Connection) -> None:
    async with AsyncTestClient(create_app(settings(anonymous_rate=3), db_dsn)) as client:
        statuses = []
        for _ in range(6):  # unknown keys: each a different guess
            guess = keydb.format_token(uuid.uuid4().hex[:12], "Q" * 40)
            statuses.append((await client.get("/v1/usage", headers={"X-API-Key": guess})).status_code)
        assert statuses == [401, 401, 401, 401, 429, 429]
        held = await client.get("/v1/usage", headers={"X-API-Key": keydb.format_token("nosuchkey123", "Q" * 40)})
        problem = assert_problem(held, 429)
        assert 1 <= int(held.headers["retry-after"]) <= 20
        assert "bad API keys" in problem["detail"]
        # reads without a key go on at the anonymous rate, which bad keys did not spend
        assert (await client.get("/v1/no-such-route")).status_code == 404


async def test_a_valid_key_is_never_refused_for_what_others_at_its_address_did(
    db_dsn: str, conn: asyncpg.Connection
) -> None:
    good = await make_key(conn, "read", rate=20)
    wrong_secret = keydb.format_token(key_id_of(good), "Q" * 40)
    async with AsyncTestClient(create_app(settings(anonymous_rate=3), db_dsn)) as client:
        # another caller behind the same address: bad keys until the address is held off ...
        for _ in range(5):
            guess = keydb.format_token(uuid.uuid4().hex[:12], "Q" * 40)
            await client.get("/v1/usage", headers={"X-API-Key": guess})
        # ... the good key's own secret guessed wrong, which must not spend the good key's rate ...
        for _ in range(5):
            assert (await client.get("/v1/usage", headers={"X-API-Key": wrong_secret})).status_code == 401
        # ... and the anonymous bucket of the address emptied
        anonymous = [(await client.get("/v1/usage")).status_code for _ in range(5)]
        assert 429 in anonymous
        for socket_headers in ({"X-API-Key": good}, {"Authorization": f"Bearer {good}"}):
            response = await client.get("/v1/usage", headers=socket_headers)
            assert response.status_code == 200, response.text
        assert response.headers["ratelimit-limit"] == "20"
        assert response.headers["ratelimit-remaining"] == "18"  # only its own two requests
        await client.get("/v1/usage", headers={"X-API-Key": good})
        # the GraphQL socket's connection_init takes the same path
        caller = await authenticate_token(client.app.state, good, "testclient")
        assert caller.key_id == key_id_of(good)
