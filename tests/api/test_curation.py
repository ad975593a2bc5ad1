"""POST /v1/actors/{ref}/confirm, /rename, /merge: an editor's review over REST, `write` scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from db import keys as keydb
from db.ingest.evaluate import PAGES
from db.ingest.gazetteer import load_gazetteer
from db.ingest.linker import Linker
from db.ingest.page import parse_page
from db.ingest.store import import_page

SECRET = "curation-test-secret"
SUDAN = next(page for name, page, _ in PAGES if "sudan" in name)


@pytest.fixture
async def client(conn: asyncpg.Connection, db_dsn: str) -> AsyncIterator[AsyncTestClient[Any]]:
    await load_gazetteer(conn)
    await import_page(conn, parse_page(SUDAN.read_text(encoding="utf-8")), await Linker.load(conn))
    settings = Settings(secret=SECRET, anonymous_rate=100_000, redis_url=None)
    async with AsyncTestClient(create_app(settings, db_dsn)) as client:
        yield client


async def _auth(conn: asyncpg.Connection, *scopes: str) -> dict[str, str]:
    _, token = await keydb.create_key(conn, SECRET, name=f"c-{'-'.join(scopes)}", scopes=scopes, rate=100_000)
    return {"Authorization": f"Bearer {token}"}


async def test_confirm_rename_merge(client: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    writer = await _auth(conn, "read", "write")
    confirmed = await client.post("/v1/actors/rapid-support-forces/confirm", headers=writer)
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["slug"], confirmed.json()["kind"]) == ("rapid-support-forces", "military")
    status = await conn.fetchval(
        "SELECT status FROM actor_discoveries d JOIN actors a ON a.id = d.actor_id WHERE a.slug = 'rapid-support-forces'"
    )
    assert status == "confirmed"

    renamed = await client.post("/v1/actors/unhcr/rename", json={"name": "UN Refugee Agency"}, headers=writer)
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["slug"], renamed.json()["name"], renamed.json()["aliases"]) == (
        "un-refugee-agency",
        "UN Refugee Agency",
        ["UNHCR"],
    )

    saf = await client.get("/v1/entries?actor=sudanese-armed-forces")
    merged = await client.post(
        "/v1/actors/sudanese-armed-forces/merge", json={"into": "rapid-support-forces"}, headers=writer
    )
    assert merged.status_code == 200, merged.text
    assert {"Sudanese Armed Forces", "SAF", "RSF"} <= set(merged.json()["aliases"])
    moved = {e["id"] for e in saf.json()["data"]}
    now = {e["id"] for e in (await client.get("/v1/entries?actor=rapid-support-forces&limit=100")).json()["data"]}
    assert moved
    assert moved <= now
    assert (await client.get("/v1/actors/sudanese-armed-forces")).status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/actors/nobody/confirm", None, 404, "slug"),
        ("/v1/actors/vladimir-putin/confirm", None, 400, "slug"),
        ("/v1/actors/unhcr/rename", {"name": ""}, 400, "name"),
        ("/v1/actors/unhcr/rename", {"nom": "x"}, 400, None),
        ("/v1/actors/unhcr/rename", {"name": "Rapid Support Forces"}, 409, "slug"),
        ("/v1/actors/unhcr/merge", {"into": "unhcr"}, 400, "into"),
        ("/v1/actors/unhcr/merge", {"into": "nobody"}, 404, "into"),
    ],
)
async def test_bad_requests_are_problems_naming_the_field(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, path: str, body: Any, status: int, field: str | None
) -> None:
    writer = await _auth(conn, "read", "write")
    answer = (
        await client.post(path, json=body, headers=writer)
        if body is not None
        else await client.post(path, headers=writer)
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert field in answer.text


async def test_a_read_key_cannot_curate(client: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    reader = await _auth(conn, "read")
    answer = await client.post("/v1/actors/rapid-support-forces/confirm", headers=reader)
    assert answer.status_code == 403
    anonymous = await client.post("/v1/actors/rapid-support-forces/confirm")
    assert anonymous.status_code in (401, 403)
