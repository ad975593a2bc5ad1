"""/metrics is behind a key when keys are required (it tells how the service is used)."""

from __future__ import annotations

import asyncpg
from litestar.testing import AsyncTestClient

from api.app import create_app
from tests.api.test_auth import assert_problem, make_key, settings


async def test_metrics_need_a_key_when_keys_are_required(db_dsn: str, conn: asyncpg.Connection) -> None:
    token = await make_key(conn, "read")
    async with AsyncTestClient(create_app(settings(require_key=True), db_dsn)) as client:
        assert_problem(await client.get("/metrics"), 401)
        assert (await client.head("/metrics")).status_code == 401
        keyed = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert keyed.status_code == 200
        assert "sitrep_http_requests" in keyed.text
    async with AsyncTestClient(create_app(settings(require_key=False), db_dsn)) as client:
        assert (await client.get("/metrics")).status_code == 200
