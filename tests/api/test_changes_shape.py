"""/v1/changes renders an entry exactly as GET /v1/entries/{id} does, timestamps included."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from db import writes

T0 = datetime(2023, 9, 13, 19, 33, tzinfo=UTC)
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


async def _feed(client: AsyncTestClient[Any], after: int = 0) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/changes?after={after}&limit=1000")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _get(client: AsyncTestClient[Any], entry_id: int) -> dict[str, Any]:
    response = await client.get(f"/v1/entries/{entry_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_changes_entry_is_the_rest_entry(client: AsyncTestClient[Any], conn: asyncpg.Connection) -> None:
    await writes.create_blog(conn, writes.BlogCreate(slug="day-1", title="Day 1", published_at=T0))
    await writes.create_actor(conn, writes.ActorCreate(slug="peskov", name="Dmitry Peskov", kind="person"))
    await writes.create_location(
        conn, writes.LocationCreate(slug="ukraine", name="Ukraine", kind="country", latitude=49.0, longitude=32.0)
    )
    await writes.create_source(conn, writes.SourceCreate(slug="tass", name="TASS", kind="agency"))
    entry_id = await writes.create_entry(
        conn,
        writes.EntryCreate(
            blog="day-1",
            published_at=T0,
            headline="Kremlin responds",
            body=["Peskov said talks are off."],
            actors=[writes.ActorLinkIn(actor="peskov", role="speaker")],
            locations=["ukraine"],
            sources=["tass"],
            media=[
                writes.MediaIn(kind="image", url="https://example.org/a.jpg", caption="A"),
                writes.MediaIn(
                    kind="embed",
                    embed=writes.EmbedIn(author="Someone", handle="@someone", date=date(2023, 9, 13), text="Hi"),
                ),
            ],
        ),
    )
    created = await _get(client, entry_id)
    assert created["published_at"] == "2023-09-13T19:33:00Z"
    await writes.update_entry(conn, entry_id, writes.EntryPatch(headline="Kremlin responds again"))
    updated = await _get(client, entry_id)
    await writes.delete_entry(conn, entry_id)

    feed = await _feed(client)
    mine = [c for c in feed if c["entity"] == "entry"]
    assert [c["op"] for c in mine] == ["create", "update", "delete"]
    # the create's data is the entry as it was then: only updated_at and the headline moved since
    assert mine[0]["data"] == created | {"headline": "Kremlin responds", "updated_at": mine[0]["data"]["updated_at"]}
    assert mine[1]["data"] == updated  # exactly GET /v1/entries/{id}, key for key
    assert mine[2]["data"] == updated  # the tombstone: the last state, as GET last answered it
    for change in feed:
        assert RFC3339_Z.match(change["at"]), change["at"]
        for key in ("published_at", "created_at", "updated_at"):
            if key in change["data"]:
                assert RFC3339_Z.match(change["data"][key]), (change["entity"], key, change["data"][key])
    # the other entities' rows carry their timestamps in the same form
    assert {c["entity"] for c in feed} == {"blog", "actor", "location", "source", "entry"}
    blog = next(c for c in feed if c["entity"] == "blog")
    assert blog["data"]["published_at"] == "2023-09-13T19:33:00Z"
