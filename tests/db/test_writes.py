"""Writes: validated bodies, references resolved or refused with nothing written, idempotency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest

from db import idempotency, writes
from db.errors import Conflict, InvalidInput, NotFound
from db.ingest.types import LinkedActor, Links
from db.pool import connect

T0 = datetime(2023, 9, 13, 8, 0, tzinfo=UTC)


async def _catalog(conn: asyncpg.Connection) -> None:
    await writes.create_blog(conn, writes.BlogCreate(slug="day-1", title="Day 1", published_at=T0))
    await writes.create_actor(conn, writes.ActorCreate(slug="peskov", name="Dmitry Peskov", kind="person"))
    await writes.create_location(
        conn, writes.LocationCreate(slug="kyiv", name="Kyiv", kind="city", latitude=50.45, longitude=30.52)
    )
    await writes.create_source(conn, writes.SourceCreate(slug="tass", name="TASS", kind="agency"))


async def _counts(conn: asyncpg.Connection) -> tuple[int, ...]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM entry_actors),"
        " (SELECT count(*) FROM media), (SELECT count(*) FROM changes)"
    )
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"published_at": "2023-09-13T08:00:00Z", "headline": "x"}', "blog"),
        (b'{"blog": "day-1", "published_at": "yesterday", "headline": "x"}', "published_at"),
        (b'{"blog": "day-1", "published_at": "2023-09-13T08:00:00", "headline": "x"}', "published_at"),
        (b'{"blog": "day-1", "published_at": "2023-09-13T08:00:00Z", "headline": ""}', "headline"),
        (b'{"blog": "day-1", "published_at": "2023-09-13T08:00:00Z", "headline": "x", "kind": "poem"}', "kind"),
        (b'{"blog": "day-1", "published_at": "2023-09-13T08:00:00Z", "headline": "x", "colour": 1}', "colour"),
        (
            b'{"blog": "day-1", "published_at": "2023-09-13T08:00:00Z", "headline": "x",'
            b' "actors": [{"actor": "peskov", "role": "boss"}]}',
            "actors[0].role",
        ),
        (b"{not json", "body"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        writes.decode_body(body, writes.EntryCreate)
    assert caught.value.field == field


async def test_an_entry_links_references_given_by_slug_or_id(conn: asyncpg.Connection) -> None:
    await _catalog(conn)
    peskov = await conn.fetchval("SELECT id FROM actors WHERE slug = 'peskov'")
    entry_id = await writes.create_entry(
        conn,
        writes.decode_body(
            msgspec.json.encode(
                {
                    "blog": "day-1",
                    "published_at": "2023-09-13T09:30:00+03:00",
                    "headline": "Kremlin on talks",
                    "body": ["One.", "Two."],
                    "actors": [{"actor": peskov, "role": "speaker"}],
                    "locations": ["kyiv"],
                    "sources": ["tass"],
                }
            ),
            writes.EntryCreate,
        ),
    )
    entry = await writes.get_entry(conn, entry_id)
    assert entry.blog.slug == "day-1"
    assert entry.published_at == datetime(2023, 9, 13, 6, 30, tzinfo=UTC)
    assert [(a.role, a.actor.slug) for a in entry.actors] == [("speaker", "peskov")]
    assert [loc.slug for loc in entry.locations] == ["kyiv"]
    assert [s.slug for s in entry.sources] == ["tass"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"blog": "no-such-blog"}, "blog"),
        ({"actors": [{"actor": "peskov"}, {"actor": "nobody"}]}, "actors[1]"),
        ({"locations": [999999]}, "locations[0]"),
        ({"sources": ["tass", "pravda-online"]}, "sources[1]"),
    ],
)
async def test_an_unknown_reference_writes_nothing(
    conn: asyncpg.Connection, change: dict[str, object], field: str
) -> None:
    await _catalog(conn)
    before = await _counts(conn)
    body = {"blog": "day-1", "published_at": T0, "headline": "x", "media": [{"url": "https://example.org/x.jpg"}]}
    with pytest.raises(InvalidInput) as caught:
        await writes.create_entry(conn, msgspec.convert(body | change, writes.EntryCreate))
    assert caught.value.field == field
    assert await _counts(conn) == before


async def test_links_not_given_are_found_by_the_linker(conn: asyncpg.Connection) -> None:
    await _catalog(conn)
    heard: list[str] = []

    def link(headline: str, paragraphs: object) -> Links:
        heard.append(headline)
        return Links(actors=(LinkedActor("peskov", "speaker"), LinkedActor("unknown-one")), locations=("kyiv",))

    async def load(_: asyncpg.Connection) -> writes.LinkText:
        return link

    entry_id = await writes.create_entry(
        conn,
        writes.EntryCreate(blog="day-1", published_at=T0, headline="Peskov in Kyiv?", sources=["tass"]),
        load,
    )
    entry = await writes.get_entry(conn, entry_id)
    assert heard == ["Peskov in Kyiv?"]
    assert [(a.role, a.actor.slug) for a in entry.actors] == [("speaker", "peskov")]
    assert [loc.slug for loc in entry.locations] == ["kyiv"]
    assert [s.slug for s in entry.sources] == ["tass"]  # given, so not the linker's


async def test_patch_changes_only_what_it_names(conn: asyncpg.Connection) -> None:
    await _catalog(conn)
    entry_id = await writes.create_entry(
        conn,
        writes.EntryCreate(blog="day-1", published_at=T0, headline="Old", body=["b"], actors=[], locations=["kyiv"]),
    )
    await writes.update_entry(
        conn, entry_id, writes.EntryPatch(headline="New", actors=[writes.ActorLinkIn(actor="peskov")])
    )
    entry = await writes.get_entry(conn, entry_id)
    assert (entry.headline, entry.body) == ("New", ["b"])
    assert [a.actor.slug for a in entry.actors] == ["peskov"]
    assert [loc.slug for loc in entry.locations] == ["kyiv"]
    with pytest.raises(NotFound):
        await writes.update_entry(conn, 424242, writes.EntryPatch(headline="x"))
    with pytest.raises(NotFound):
        await writes.delete_entry(conn, 424242)


async def test_a_duplicate_slug_is_a_conflict(conn: asyncpg.Connection) -> None:
    await _catalog(conn)
    with pytest.raises(Conflict) as caught:
        await writes.create_actor(conn, writes.ActorCreate(slug="peskov", name="Another", kind="person"))
    assert caught.value.field == "slug"


async def test_location_parent_cycles_are_refused(conn: asyncpg.Connection) -> None:
    await _catalog(conn)
    await writes.create_location(
        conn,
        writes.LocationCreate(slug="podil", name="Podil", kind="site", latitude=50.46, longitude=30.51, parent="kyiv"),
    )
    with pytest.raises(InvalidInput) as caught:
        await writes.update_location(conn, "kyiv", writes.LocationPatch(parent="podil"))
    assert caught.value.field == "parent"
    podil = await writes.get_location(conn, await conn.fetchval("SELECT id FROM locations WHERE slug = 'podil'"))
    assert podil.parent is not None
    assert podil.parent.slug == "kyiv"


async def _post_entry(conn: asyncpg.Connection, key: str, body: bytes) -> idempotency.Answer:
    async def work(c: asyncpg.Connection) -> idempotency.Answer:
        entry_id = await writes.create_entry(c, writes.decode_body(body, writes.EntryCreate))
        return idempotency.Answer(status=201, body=str(entry_id).encode(), location=f"/v1/entries/{entry_id}")

    return await idempotency.once(
        conn, caller="key:1", key=key, hashed=idempotency.request_hash("POST", "/v1/entries", body), work=work
    )


BODY = b'{"blog": "day-1", "published_at": "2023-09-13T08:00:00Z", "headline": "Once", "actors": []}'


async def test_a_retried_write_with_the_same_key_writes_once(conn: asyncpg.Connection) -> None:
    await _catalog(conn)
    first = await _post_entry(conn, "k-1", BODY)
    again = await _post_entry(conn, "k-1", BODY)
    assert (again.body, again.location, again.replayed) == (first.body, first.location, True)
    assert await conn.fetchval("SELECT count(*) FROM entries") == 1
    with pytest.raises(Conflict):
        await _post_entry(conn, "k-1", BODY.replace(b"Once", b"Twice"))
    assert await conn.fetchval("SELECT count(*) FROM entries") == 1


async def test_concurrent_requests_with_one_key_write_once(db_dsn: str, conn: asyncpg.Connection) -> None:
    await _catalog(conn)
    others = [await connect(db_dsn) for _ in range(4)]
    try:
        answers = await asyncio.gather(*(_post_entry(c, "k-2", BODY) for c in others))
    finally:
        for c in others:
            await c.close()
    assert len({a.body for a in answers}) == 1
    assert sorted(a.replayed for a in answers) == [False, True, True, True]
    assert await conn.fetchval("SELECT count(*) FROM entries") == 1


async def test_keys_older_than_a_day_are_forgotten(conn: asyncpg.Connection) -> None:
    await _catalog(conn)
    await _post_entry(conn, "old-key", BODY)
    await conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    again = await _post_entry(conn, "old-key", BODY)  # an expired key is a new request
    assert not again.replayed
    assert await conn.fetchval("SELECT count(*) FROM entries") == 2
    await conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    await _post_entry(conn, "new-key", BODY)
    assert [r["key"] for r in await conn.fetch("SELECT key FROM idempotency_keys")] == ["new-key"]
