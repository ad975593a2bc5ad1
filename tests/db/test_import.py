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
            ('volodymyr-zelenskyy', 'Volodymyr Zelenskyy', 'person'), ('dmytro-kuleba', 'Dmytro Kuleba', 'person');
        INSERT INTO locations (slug, name, kind, latitude, longitude) VALUES
            ('ukraine', 'Ukraine', 'country', 49, 32), ('odesa', 'Odesa', 'city', 46.48, 30.72);
        INSERT INTO sources (slug, name, kind) VALUES ('tass', 'TASS', 'agency'), ('telegram', 'Telegram', 'social');
        """
    )


def word_linker(headline: str, body: Sequence[str]) -> Links:
    """A linker by plain words: enough to give entries links the store has to keep in step."""
    text = " ".join([headline, *body])
    actors = []
    if "Kuleba" in text:
        actors.append(LinkedActor("dmytro-kuleba", "speaker" if "Kuleba told" in text else "mentioned"))
    if "Zelenskyy" in text:
        actors.append(LinkedActor("volodymyr-zelenskyy"))
    if "Lavrov" in text:
        actors.append(LinkedActor("sergey-lavrov"))  # not in the database: skipped
    locations = [slug for word, slug in (("Ukrain", "ukraine"), ("Odesa", "odesa")) if word in text]
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
async def imported(conn: asyncpg.Connection, page_text: str) -> asyncpg.Connection:
    await add_catalog(conn)
    result = await import_text(conn, page_text, word_linker)
    assert (result.blog, result.created, result.updated, result.unchanged) == ("created", 15, 0, 0)
    assert result.blog_slug == "ukraine-war-live-2024-03-02"
    assert result.blog_id == await conn.fetchval("SELECT id FROM blogs")
    return conn


async def test_our_page_imports_as_one_blog_of_15_entries(imported: asyncpg.Connection) -> None:
    conn = imported
    n = await counts(conn)
    assert n["blogs"] == 1
    assert n["entries"] == 15
    assert n["media"] == 8  # 6 images and 2 embedded posts
    blog = await conn.fetchrow("SELECT * FROM blogs")
    assert blog["title"] == "Ukraine war live: Odesa counts the damage after a night of drones"
    assert blog["status"] == "closed"
    assert blog["authors"] == ["Tess Harbour", "Omar Lind", "Rui Santos"]
    assert len(blog["summary"]) == 3
    assert blog["hero_image"] == {
        "type": "image",
        "alt": "Odesa harbour",
        "caption": "Firefighters spray water on a burning warehouse by the Odesa waterfront before sunrise",
        "credit": "Nina Koval/Reuters",
        "url": None,
    }
    first, last = (
        await conn.fetchval("SELECT max(published_at) FROM entries"),
        await conn.fetchval("SELECT min(published_at) FROM entries"),
    )
    assert first == dt.datetime(2024, 3, 3, 1, 20, tzinfo=dt.UTC)
    assert last == dt.datetime(2024, 3, 2, 7, 5, tzinfo=dt.UTC)
    kinds = dict(await conn.fetch("SELECT kind, count(*) FROM entries GROUP BY kind"))
    assert kinds == {"post": 12, "video": 1, "interactive": 1, "read_more": 1}
    # headline-only entries are stored with an empty body
    assert await conn.fetchval("SELECT count(*) FROM entries WHERE cardinality(body) = 0") == 3


async def test_media_rows_keep_captions_credits_and_embeds(imported: asyncpg.Connection) -> None:
    conn = imported
    rows = await conn.fetch(
        """SELECT m.* FROM media m JOIN entries e ON e.id = m.entry_id
            WHERE e.published_at = '2024-03-02 19:45Z' ORDER BY m.position"""
    )
    assert [(r["position"], r["kind"], r["credit"]) for r in rows] == [
        (i, "image", "Sitrep Graphics") for i in range(2)
    ]
    embed = await conn.fetchrow("SELECT * FROM media WHERE embed_handle = '@DefenceHQ'")
    assert embed["kind"] == "embed"
    assert embed["embed_author"] == "Ministry of Defence 🇬🇧"
    assert embed["embed_date"] == dt.date(2024, 3, 2)
    assert embed["embed_text"].startswith("Our daily note on the war")
    image = await conn.fetchrow("SELECT * FROM media WHERE alt_text = 'Scholz and Macron'")
    assert image["credit"] == "Lena Brandt/AFP"
    assert image["caption"].startswith("Olaf Scholz and Emmanuel Macron shake hands")


async def test_links_follow_the_linker_and_copy_published_at(imported: asyncpg.Connection) -> None:
    conn = imported
    # 15:40: Kuleba is mentioned, Ukraine named; Reuters is not in the catalogue
    links = await conn.fetch(
        """SELECT a.slug, ea.role, ea.published_at FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id
            JOIN entries e ON e.id = ea.entry_id WHERE e.published_at = '2024-03-02 15:40Z' ORDER BY a.slug"""
    )
    assert [(r["slug"], r["role"]) for r in links] == [("dmytro-kuleba", "mentioned")]
    assert all(r["published_at"] == dt.datetime(2024, 3, 2, 15, 40, tzinfo=dt.UTC) for r in links)
    speaker = await conn.fetchval(
        """SELECT ea.role FROM entry_actors ea JOIN entries e ON e.id = ea.entry_id
            WHERE e.published_at = '2024-03-02 14:05Z'"""
    )
    assert speaker == "speaker"
    # every link row carries its entry's time
    for table in ("entry_actors", "entry_locations", "entry_sources"):
        wrong = await conn.fetchval(
            f"SELECT count(*) FROM {table} l JOIN entries e ON e.id = l.entry_id WHERE l.published_at <> e.published_at"
        )
        assert wrong == 0
    for slug, word in (("tass", "TASS"), ("telegram", "Telegram")):
        linked = await conn.fetchval(
            "SELECT count(*) FROM entry_sources es JOIN sources s ON s.id = es.source_id WHERE s.slug = $1", slug
        )
        texts = await conn.fetchval("SELECT array_agg(headline || ' ' || array_to_string(body, ' ')) FROM entries")
        assert linked == sum(word in e for e in texts)
        assert linked > 0


async def test_reimporting_the_same_page_changes_nothing(imported: asyncpg.Connection, page_text: str) -> None:
    conn = imported
    before = await row_versions(conn)
    feed = await conn.fetchval("SELECT count(*) FROM changes")
    assert feed > 15  # the first import was announced: the blog and each entry
    result = await import_text(conn, page_text, word_linker)
    assert (result.blog, result.created, result.updated, result.unchanged) == ("unchanged", 0, 0, 15)
    assert await row_versions(conn) == before
    assert await conn.fetchval("SELECT count(*) FROM changes") == feed  # mirrors hear of nothing


async def test_two_imports_of_one_page_at_once_make_one_blog(db_dsn: str, page_text: str) -> None:
    a, b = await connect(db_dsn), await connect(db_dsn)
    try:
        results = await asyncio.gather(import_text(a, page_text, word_linker), import_text(b, page_text, word_linker))
        assert sorted((r.created, r.unchanged) for r in results) == [(0, 15), (15, 0)]
        assert await a.fetchval("SELECT count(*) FROM entries") == 15
        assert await a.fetchval("SELECT count(*) FROM blogs") == 1
    finally:
        await a.close()
        await b.close()


async def test_an_edited_headline_updates_that_entry_only(imported: asyncpg.Connection, page_text: str) -> None:
    conn = imported
    before = await row_versions(conn)
    edited = page_text.replace("Lavrov to visit Ankara next week, Moscow says", "Lavrov heads to Ankara next week")
    result = await import_text(conn, edited, word_linker)
    assert (result.blog, result.created, result.updated, result.unchanged) == ("unchanged", 0, 1, 14)
    after = await row_versions(conn)
    changed = [a for a, b in zip(after["entries"], before["entries"], strict=True) if a != b]
    (row,) = changed
    assert row[2] > before["entries"][0][2]  # its updated_at moved on
    assert (
        await conn.fetchval("SELECT headline FROM entries WHERE id = $1", row[0]) == "Lavrov heads to Ankara next week"
    )
    assert await conn.fetchval("SELECT count(*) FROM entries") == 15
    assert after["media"] == before["media"]
    assert after["blogs"] == before["blogs"]


async def test_changed_media_or_links_update_the_entry_and_its_updated_at(
    imported: asyncpg.Connection, page_text: str
) -> None:
    conn = imported
    before = {r[0]: r for r in (await row_versions(conn))["entries"]}
    recaptioned = page_text.replace("[Lena Brandt/AFP]", "[AFP]")
    result = await import_text(conn, recaptioned, word_linker)
    assert (result.updated, result.unchanged) == (1, 14)
    assert await conn.fetchval("SELECT count(*) FROM media WHERE credit = 'AFP'") == 1
    assert await conn.fetchval("SELECT count(*) FROM media") == 8

    # a linker that knows no Odesa: every entry naming Odesa loses that link, and only those change
    def without_odesa(headline: str, body: Sequence[str]) -> Links:
        found = word_linker(headline, body)
        return Links(found.actors, tuple(s for s in found.locations if s != "odesa"), found.sources)

    odesa = "SELECT entry_id FROM entry_locations el JOIN locations l ON l.id = el.location_id WHERE l.slug = 'odesa'"
    odesa_entries = {r["entry_id"] for r in await conn.fetch(odesa)}
    assert len(odesa_entries) >= 5
    result = await import_text(conn, recaptioned, without_odesa)
    assert (result.updated, result.unchanged) == (len(odesa_entries), 15 - len(odesa_entries))
    after = {r[0]: r for r in (await row_versions(conn))["entries"]}
    moved = {i for i in after if after[i][2] != before[i][2]}
    shells = await conn.fetchval("SELECT entry_id FROM media WHERE credit = 'AFP'")
    assert moved == odesa_entries | {shells}
    assert await conn.fetch(odesa) == []


async def test_an_updated_page_adds_new_entries_and_leaves_dropped_ones(
    imported: asyncpg.Connection, page_text: str
) -> None:
    conn = imported
    marker = "  • live-orange\n    3 Mar 2024 - 01:20"
    addition = "  • live-orange\n    3 Mar 2024 - 01:20\n     (01:20 GMT)\n\n    A later update in the same minute\n\n    Words.\n\n"
    lines = page_text.replace(marker, addition + marker, 1)
    # and the oldest entry (07:05) drops off the page: cut from its marker to the Source line
    start = lines.index("  • live-orange\n    2 Mar 2024 - 07:05")
    trimmed = lines[:start] + lines[lines.index("Source: Sitrep") :]
    assert len(parse_page(trimmed).entries) == 15
    result = await import_text(conn, trimmed, word_linker)
    assert (result.created, result.updated, result.unchanged) == (1, 0, 14)
    assert await conn.fetchval("SELECT count(*) FROM entries") == 16
    keys = await conn.fetch("SELECT external_key FROM entries WHERE published_at = '2024-03-03 01:20Z' ORDER BY 1")
    assert [r[0] for r in keys] == ["2024-03-03T01:20Z/1", "2024-03-03T01:20Z/2"]


async def test_a_malformed_page_writes_nothing(conn: asyncpg.Connection, page_text: str) -> None:
    broken = page_text.replace("2 Mar 2024 - 12:00", "2 Mar 2024 - 12.00")
    line = broken.splitlines().index("    2 Mar 2024 - 12.00") + 1
    assert line > 100  # entries before it parsed fine, and are not written either
    with pytest.raises(PageError, match=rf"^line {line}: expected an entry time"):
        await import_text(conn, broken, word_linker)
    truncated = page_text[: page_text.index("Source: Sitrep")]
    with pytest.raises(PageError, match=r"the end of the page: is it cut short"):
        await import_text(conn, truncated, word_linker)
    assert set((await counts(conn)).values()) == {0}


async def test_a_failure_midway_leaves_nothing_half_written(conn: asyncpg.Connection, page_text: str) -> None:
    await add_catalog(conn)
    calls = 0

    def failing(headline: str, body: Sequence[str]) -> Links:
        nonlocal calls
        calls += 1
        if calls == 10:
            raise RuntimeError("the linker fell over")
        return word_linker(headline, body)

    with pytest.raises(RuntimeError):
        await import_text(conn, page_text, failing)
    assert set((await counts(conn)).values()) == {0}

    # a bad link slug the linker invents is skipped, not an error
    def inventive(headline: str, body: Sequence[str]) -> Links:
        return Links(actors=(LinkedActor("no-such-actor", "speaker"),), locations=("atlantis",), sources=("rumour",))

    result = await import_page(conn, parse_page(page_text), inventive)
    assert result.created == 15
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


async def test_the_seed_imports_as_one_blog_of_48_entries(conn: asyncpg.Connection, seed_text: str) -> None:
    await add_catalog(conn)
    result = await import_text(conn, seed_text, word_linker)
    assert (result.blog, result.created, result.blog_slug) == ("created", 48, "russia-ukraine-war-updates-2023-09-13")
    n = await counts(conn)
    assert (n["blogs"], n["entries"], n["media"]) == (1, 48, 13)  # 10 images and 3 embedded posts
    kinds = dict(await conn.fetch("SELECT kind, count(*) FROM entries GROUP BY kind"))
    assert kinds == {"post": 38, "video": 5, "interactive": 1, "read_more": 4}  # 14:24 is a headline alone: a video
    again = await import_text(conn, seed_text, word_linker)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 48)
