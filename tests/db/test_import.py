"""Importing pages into real PostgreSQL: counts, idempotence, updates in place, atomicity."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import asyncpg
import pytest

from db.ingest.page import PageError, parse_page
from db.ingest.store import LinkFn, import_page, import_text
from db.ingest.types import LinkedActor, Links
from db.pool import connect
from tests.db.pages import Post, page


async def add_catalog(conn: asyncpg.Connection) -> None:
    """A few actors, locations and sources for the test linker to point at."""
    await conn.execute(
        """
        INSERT INTO actors (slug, name, kind) VALUES
            ('vladimir-putin', 'Vladimir Putin', 'person'), ('kim-jong-un', 'Kim Jong Un', 'person');
        INSERT INTO locations (slug, name, kind, latitude, longitude) VALUES
            ('ukraine', 'Ukraine', 'country', 49, 32), ('crimea', 'Crimea', 'region', 45, 34);
        INSERT INTO sources (slug, name, kind) VALUES ('tass', 'TASS', 'agency'), ('telegram', 'Telegram', 'social');
        """
    )


def word_linker(headline: str, body: Sequence[str]) -> Links:
    """A linker by plain words: enough to give entries links the store has to keep in step."""
    text = " ".join([headline, *body])
    actors = []
    if "Putin" in text:
        actors.append(LinkedActor("vladimir-putin", "speaker" if "Putin says" in text else "mentioned"))
    if "Kim" in text:
        actors.append(LinkedActor("kim-jong-un"))
    if "Shoigu" in text:
        actors.append(LinkedActor("sergei-shoigu"))  # not in the database: skipped
    locations = [slug for word, slug in (("Ukrain", "ukraine"), ("Crimea", "crimea")) if word in text]
    sources = [
        slug for word, slug in (("TASS", "tass"), ("Telegram", "telegram"), ("Reuters", "reuters")) if word in text
    ]
    return Links(actors=tuple(actors), locations=tuple(locations), sources=tuple(sources))


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    tables = ("blogs", "entries", "media", "entry_actors", "entry_locations", "entry_sources")
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


async def row_versions(conn: asyncpg.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every stored row with its xmin: a row rewritten in any way gets a new one."""
    return {
        "blogs": [tuple(r) for r in await conn.fetch("SELECT id, xmin::text, updated_at FROM blogs ORDER BY id")],
        "entries": [tuple(r) for r in await conn.fetch("SELECT id, xmin::text, updated_at FROM entries ORDER BY id")],
        "media": [tuple(r) for r in await conn.fetch("SELECT id, xmin::text FROM media ORDER BY id")],
        "links": [
            tuple(r)
            for r in await conn.fetch(
                """SELECT 'a', entry_id, actor_id, xmin::text FROM entry_actors
                   UNION ALL SELECT 'l', entry_id, location_id, xmin::text FROM entry_locations
                   UNION ALL SELECT 's', entry_id, source_id, xmin::text FROM entry_sources ORDER BY 1, 2, 3"""
            )
        ],
    }


@pytest.fixture
async def imported(conn: asyncpg.Connection, seed_text: str) -> asyncpg.Connection:
    await add_catalog(conn)
    result = await import_text(conn, seed_text, word_linker)
    assert (result.blog, result.created, result.updated, result.unchanged) == ("created", 48, 0, 0)
    assert result.blog_slug == "russia-ukraine-war-updates-2023-09-13"
    assert result.blog_id == await conn.fetchval("SELECT id FROM blogs")
    return conn


async def test_the_seed_imports_as_one_blog_of_48_entries(imported: asyncpg.Connection) -> None:
    conn = imported
    n = await counts(conn)
    assert n["blogs"] == 1
    assert n["entries"] == 48
    assert n["media"] == 13  # 10 images and 3 embedded posts
    blog = await conn.fetchrow("SELECT * FROM blogs")
    assert blog["title"] == "Russia-Ukraine war updates: Kyiv says Russian targets damaged in Crimea"
    assert blog["status"] == "closed"
    assert blog["authors"] == ["Kevin Doyle", "Priyanka Shankar", "Arwa Ibrahim"]
    assert len(blog["summary"]) == 5
    assert blog["hero_image"] == {
        "type": "image",
        "alt": "Sevastopol",
        "caption": blog["hero_image"]["caption"],
        "credit": "Reuters",
        "url": None,
    }
    assert blog["hero_image"]["caption"].startswith("Smoke rises from the shipyard")
    first, last = (
        await conn.fetchval("SELECT max(published_at) FROM entries"),
        await conn.fetchval("SELECT min(published_at) FROM entries"),
    )
    assert first == dt.datetime(2023, 9, 13, 19, 33, tzinfo=dt.UTC)
    assert last == dt.datetime(2023, 9, 13, 4, 40, tzinfo=dt.UTC)
    kinds = dict(await conn.fetch("SELECT kind, count(*) FROM entries GROUP BY kind"))
    assert kinds == {"post": 38, "video": 5, "interactive": 1, "read_more": 4}  # 14:24 is a headline alone: a video


async def test_media_rows_keep_captions_credits_and_embeds(imported: asyncpg.Connection) -> None:
    conn = imported
    rows = await conn.fetch(
        """SELECT m.* FROM media m JOIN entries e ON e.id = m.entry_id
            WHERE e.published_at = '2023-09-13 15:05Z' ORDER BY m.position"""
    )
    assert [(r["position"], r["kind"], r["credit"]) for r in rows] == [(i, "image", "Al Jazeera") for i in range(3)]
    embed = await conn.fetchrow("SELECT * FROM media WHERE embed_handle = '@DefenceHQ'")
    assert embed["kind"] == "embed"
    assert embed["embed_author"] == "Ministry of Defence 🇬🇧"
    assert embed["embed_date"] == dt.date(2023, 9, 13)
    assert embed["embed_text"].startswith("Latest Defence Intelligence update")
    image = await conn.fetchrow("SELECT * FROM media WHERE alt_text = 'ukraine war'")
    assert image["credit"] == "Reuters"
    assert image["caption"].startswith("Smoke rises from the shipyard")


async def test_links_follow_the_linker_and_copy_published_at(imported: asyncpg.Connection) -> None:
    conn = imported
    # 04:44 "Putin says very glad to see Kim": Putin speaks, Kim is mentioned, TASS is not there
    links = await conn.fetch(
        """SELECT a.slug, ea.role, ea.published_at FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id
            JOIN entries e ON e.id = ea.entry_id WHERE e.published_at = '2023-09-13 04:44Z' ORDER BY a.slug"""
    )
    assert [(r["slug"], r["role"]) for r in links] == [("kim-jong-un", "mentioned"), ("vladimir-putin", "speaker")]
    assert all(r["published_at"] == dt.datetime(2023, 9, 13, 4, 44, tzinfo=dt.UTC) for r in links)
    # every link row carries its entry's time
    for table in ("entry_actors", "entry_locations", "entry_sources"):
        wrong = await conn.fetchval(
            f"SELECT count(*) FROM {table} l JOIN entries e ON e.id = l.entry_id WHERE l.published_at <> e.published_at"
        )
        assert wrong == 0
    tass = await conn.fetchval(
        "SELECT count(*) FROM entry_sources es JOIN sources s ON s.id = es.source_id WHERE s.slug = 'tass'"
    )
    assert tass == sum(
        "TASS" in e
        for e in await conn.fetchval("SELECT array_agg(headline || ' ' || array_to_string(body, ' ')) FROM entries")
    )
    assert tass > 0


async def test_reimporting_the_same_page_changes_nothing(imported: asyncpg.Connection, seed_text: str) -> None:
    conn = imported
    before = await row_versions(conn)
    feed = await conn.fetchval("SELECT count(*) FROM changes")
    assert feed > 48  # the first import was announced: the blog and each entry
    result = await import_text(conn, seed_text, word_linker)
    assert (result.blog, result.created, result.updated, result.unchanged) == ("unchanged", 0, 0, 48)
    assert await row_versions(conn) == before
    assert await conn.fetchval("SELECT count(*) FROM changes") == feed  # mirrors hear of nothing


async def test_two_imports_of_one_page_at_once_make_one_blog(db_dsn: str, seed_text: str) -> None:
    a, b = await connect(db_dsn), await connect(db_dsn)
    try:
        results = await asyncio.gather(import_text(a, seed_text, word_linker), import_text(b, seed_text, word_linker))
        assert sorted((r.created, r.unchanged) for r in results) == [(0, 48), (48, 0)]
        assert await a.fetchval("SELECT count(*) FROM entries") == 48
        assert await a.fetchval("SELECT count(*) FROM blogs") == 1
    finally:
        await a.close()
        await b.close()


async def test_an_edited_headline_updates_that_entry_only(imported: asyncpg.Connection, seed_text: str) -> None:
    conn = imported
    before = await row_versions(conn)
    edited = seed_text.replace("Talks between Kim and Putin have ended", "Kim and Putin end their talks")
    result = await import_text(conn, edited, word_linker)
    assert (result.blog, result.created, result.updated, result.unchanged) == ("unchanged", 0, 1, 47)
    after = await row_versions(conn)
    changed = [a for a, b in zip(after["entries"], before["entries"], strict=True) if a != b]
    (row,) = changed
    assert row[2] > before["entries"][0][2]  # its updated_at moved on
    assert await conn.fetchval("SELECT headline FROM entries WHERE id = $1", row[0]) == "Kim and Putin end their talks"
    assert await conn.fetchval("SELECT count(*) FROM entries") == 48
    assert after["media"] == before["media"]
    assert after["blogs"] == before["blogs"]


async def test_changed_media_or_links_update_the_entry_and_its_updated_at(
    imported: asyncpg.Connection, seed_text: str
) -> None:
    conn = imported
    before = {r[0]: r for r in (await row_versions(conn))["entries"]}
    recaptioned = seed_text.replace("[Handout/Romanian Defense Ministry MAPN via AP]", "[AP]")
    result = await import_text(conn, recaptioned, word_linker)
    assert (result.updated, result.unchanged) == (1, 47)
    assert await conn.fetchval("SELECT count(*) FROM media WHERE credit = 'AP'") == 1
    assert await conn.fetchval("SELECT count(*) FROM media") == 13

    # a linker that knows no Kim: every entry naming Kim loses that link, and only those change
    def without_kim(headline: str, body: Sequence[str]) -> Links:
        found = word_linker(headline, body)
        return Links(tuple(a for a in found.actors if a.slug != "kim-jong-un"), found.locations, found.sources)

    kim_entries = {
        r["entry_id"]
        for r in await conn.fetch(
            "SELECT entry_id FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id WHERE a.slug = 'kim-jong-un'"
        )
    }
    assert len(kim_entries) > 10
    result = await import_text(conn, recaptioned, without_kim)
    assert (result.updated, result.unchanged) == (len(kim_entries), 48 - len(kim_entries))
    after = {r[0]: r for r in (await row_versions(conn))["entries"]}
    moved = {i for i in after if after[i][2] != before[i][2]}
    romania = await conn.fetchval("SELECT entry_id FROM media WHERE credit = 'AP'")
    assert moved == kim_entries | {romania}
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id WHERE a.slug = 'kim-jong-un'"
        )
        == 0
    )


async def test_an_updated_page_adds_new_entries_and_leaves_dropped_ones(
    imported: asyncpg.Connection, seed_text: str
) -> None:
    conn = imported
    marker = "  • live-orange\n    13 Sep 2023 - 19:33"
    addition = "  • live-orange\n    13 Sep 2023 - 19:33\n     (19:33 GMT)\n\n    A later update in the same minute\n\n    Words.\n\n"
    lines = seed_text.replace(marker, addition + marker, 1)
    # and the oldest entry (04:40) drops off the page: cut from its marker to the Source line
    start = lines.index("  • live-orange\n    13 Sep 2023 - 04:40")
    trimmed = lines[:start] + lines[lines.index("Source: Al Jazeera") :]
    assert len(parse_page(trimmed).entries) == 48
    result = await import_text(conn, trimmed, word_linker)
    assert (result.created, result.updated, result.unchanged) == (1, 0, 47)
    assert await conn.fetchval("SELECT count(*) FROM entries") == 49
    keys = await conn.fetch("SELECT external_key FROM entries WHERE published_at = '2023-09-13 19:33Z' ORDER BY 1")
    assert [r[0] for r in keys] == ["2023-09-13T19:33Z/1", "2023-09-13T19:33Z/2"]


async def test_a_malformed_page_writes_nothing(conn: asyncpg.Connection, seed_text: str) -> None:
    broken = seed_text.replace("13 Sep 2023 - 12:52", "13 Sep 2023 - 12.52")
    with pytest.raises(PageError, match=r"^line 263: expected an entry time"):
        await import_text(conn, broken, word_linker)
    truncated = seed_text[: seed_text.index("Source: Al Jazeera")]
    with pytest.raises(PageError, match=r"the end of the page: is it cut short"):
        await import_text(conn, truncated, word_linker)
    assert set((await counts(conn)).values()) == {0}


async def test_a_failure_midway_leaves_nothing_half_written(conn: asyncpg.Connection, seed_text: str) -> None:
    await add_catalog(conn)
    calls = 0

    def failing(headline: str, body: Sequence[str]) -> Links:
        nonlocal calls
        calls += 1
        if calls == 30:
            raise RuntimeError("the linker fell over")
        return word_linker(headline, body)

    with pytest.raises(RuntimeError):
        await import_text(conn, seed_text, failing)
    assert set((await counts(conn)).values()) == {0}

    # a bad link slug the linker invents is skipped, not an error
    def inventive(headline: str, body: Sequence[str]) -> Links:
        return Links(actors=(LinkedActor("no-such-actor", "speaker"),), locations=("atlantis",), sources=("rumour",))

    result = await import_page(conn, parse_page(seed_text), inventive)
    assert result.created == 48
    n = await counts(conn)
    assert (n["entry_actors"], n["entry_locations"], n["entry_sources"]) == (0, 0, 0)


async def test_entries_across_midnight_are_stored_on_their_own_dates(conn: asyncpg.Connection) -> None:
    text = page(
        [
            Post("14 Sep 2023 - 00:10", "00:10", "Just after midnight"),
            Post("14 Sep 2023 - 01:33", "22:33", "Shown in Kyiv time"),
            Post("13 Sep 2023 - 23:50", "23:50", "Just before midnight"),
        ]
    )
    link: LinkFn = word_linker
    result = await import_text(conn, text, link)
    assert result.created == 3
    stored = dict(await conn.fetch("SELECT headline, published_at FROM entries"))
    assert stored == {
        "Just after midnight": dt.datetime(2023, 9, 14, 0, 10, tzinfo=dt.UTC),
        "Shown in Kyiv time": dt.datetime(2023, 9, 13, 22, 33, tzinfo=dt.UTC),
        "Just before midnight": dt.datetime(2023, 9, 13, 23, 50, tzinfo=dt.UTC),
    }
    blog = await conn.fetchrow("SELECT slug, status, hero_image FROM blogs")
    assert blog["slug"] == "test-war-live-2023-09-13"
    assert blog["status"] == "live"
    # the same series later that day, retitled and closed: the same blog, updated
    later = text.replace("Test war live: a quiet night", "Test war live: a busy morning").replace(
        "  • The first key point.", "This blog is now closed.\n\n  • The first key point."
    )
    result = await import_text(conn, later, word_linker)
    assert (result.blog, result.created, result.unchanged) == ("updated", 0, 3)
    assert await conn.fetchval("SELECT count(*) FROM blogs") == 1
    assert await conn.fetchval("SELECT (title, status)::text FROM blogs") == '("Test war live: a busy morning",closed)'
