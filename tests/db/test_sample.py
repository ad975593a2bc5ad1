"""The sample dataset: our own words about the seed's day, loaded once into an empty database."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from pathlib import Path

import asyncpg
import pytest

from db.ingest.page import parse_page
from db.pool import connect
from db.sample import PAGE, load_sample_if_empty
from tests.conftest import PAGE as TEST_PAGE

RUN = 8
# Runs of RUN words the sample may share with the seed, each with the reason. Empty so far:
# names that long (organisations, titles) were reworded rather than allowed.
ALLOWED_RUNS: dict[str, str] = {}
# The page's structure (entry markers and times) is format, not prose.
_STRUCTURE = re.compile(r"^\s*(?:• live|\d{1,2} [A-Z][a-z]{2} \d{4} - \d\d:\d\d|\(\d\d:\d\d GMT\))\s*$")


def _words(text: str, apostrophe: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", apostrophe).replace("'", apostrophe)
    return re.sub(r"[^a-z0-9]+", " ", text).split()


def shared_runs(sample: str, seed: str) -> set[str]:
    """Runs of RUN words (case and punctuation ignored) in a line of the sample and anywhere in the seed."""
    found: set[str] = set()
    for apostrophe in ("", " "):  # "Russia's" as one word and as two
        seed_words = _words(seed, apostrophe)
        seed_runs = {tuple(seed_words[i : i + RUN]) for i in range(len(seed_words) - RUN + 1)}
        for line in sample.splitlines():
            if _STRUCTURE.match(line):
                continue
            words = _words(line, apostrophe)
            found |= {" ".join(words[i : i + RUN]) for i in range(len(words) - RUN + 1)} & {
                " ".join(run) for run in seed_runs
            }
    return found


@pytest.mark.parametrize("ours", [PAGE, TEST_PAGE], ids=["sample", "test-page"])
def test_no_run_of_eight_words_is_copied_from_the_seed(seed_text: str, ours: Path) -> None:
    copied = shared_runs(ours.read_text(encoding="utf-8"), seed_text) - set(ALLOWED_RUNS)
    assert copied == set()


def test_the_overlap_check_would_catch_a_copied_sentence(seed_text: str) -> None:
    copied = "Putin said Russia will help North Korea build space satellites, Russian state news agencies report."
    assert copied in seed_text.replace("\u2019", "'")
    assert shared_runs(f"    {copied}\n", seed_text)


def test_the_sample_tells_the_seeds_day_without_its_page(seed_text: str) -> None:
    text = PAGE.read_text(encoding="utf-8")
    sample, seed = parse_page(text), parse_page(seed_text)
    assert len(sample.entries) == len(seed.entries) == 48
    assert [e.published_at for e in sample.entries] == [e.published_at for e in seed.entries]
    # the same kinds as the text shows them; the seed's publisher rule (a headline alone is a
    # video, db/ingest/data/publishers.json) is not the sample desk's
    unruled = parse_page(seed_text.replace("\nSource: Al Jazeera", "\nSource: another desk"))
    assert [e.kind for e in sample.entries] == [e.kind for e in unruled.entries]
    assert sample.blog.status == "closed"
    assert sample.blog.authors == ("sitrep sample desk",)
    assert sample.blog.published_at == seed.blog.published_at
    assert sample.blog.slug != seed.blog.slug
    assert sample.blog.summary
    assert not set(sample.blog.summary) & set(seed.blog.summary)
    for chrome in ("Skip links", "Navigation menu", "Most Read", "More from News", "Cookie", "http", "pic.twitter"):
        assert chrome not in text
    for entry in sample.entries:
        assert 0 <= len(entry.body) <= 3
        assert all(m.url is None for m in entry.media)


async def _snapshot(conn: asyncpg.Connection) -> list[str]:
    tables = ("blogs", "entries", "actors", "locations", "sources", "entry_actors", "entry_locations", "entry_sources")
    return [await conn.fetchval(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {t} t") for t in tables]


async def test_an_empty_database_gets_the_sample_once(conn: asyncpg.Connection) -> None:
    assert await load_sample_if_empty(conn) == "1 blog, 48 entries"
    assert await conn.fetchval("SELECT count(*) FROM blogs") == 1
    assert await conn.fetchval("SELECT count(*) FROM entries") == 48
    # the linker found who, where and which source
    linked = await conn.fetchval(
        "SELECT count(*) FROM entries e WHERE EXISTS (SELECT 1 FROM entry_actors WHERE entry_id = e.id)"
        " OR EXISTS (SELECT 1 FROM entry_locations WHERE entry_id = e.id)"
    )
    assert linked >= 45
    assert await conn.fetchval("SELECT count(DISTINCT entry_id) FROM entry_sources") >= 15

    async def links(time: str) -> set[str]:
        rows = await conn.fetch(
            """SELECT 'actor:' || a.slug || ':' || ea.role AS link FROM entries e
                 JOIN entry_actors ea ON ea.entry_id = e.id JOIN actors a ON a.id = ea.actor_id
                WHERE to_char(e.published_at AT TIME ZONE 'UTC', 'HH24:MI') = $1
               UNION ALL
               SELECT 'location:' || l.slug FROM entries e
                 JOIN entry_locations el ON el.entry_id = e.id JOIN locations l ON l.id = el.location_id
                WHERE to_char(e.published_at AT TIME ZONE 'UTC', 'HH24:MI') = $1
               UNION ALL
               SELECT 'source:' || s.slug FROM entries e
                 JOIN entry_sources es ON es.entry_id = e.id JOIN sources s ON s.id = es.source_id
                WHERE to_char(e.published_at AT TIME ZONE 'UTC', 'HH24:MI') = $1""",
            time,
        )
        return {r["link"] for r in rows}

    assert {"location:bryansk-oblast", "source:telegram"} <= await links("19:33")
    assert {"actor:dmitry-peskov:speaker", "source:interfax"} <= await links("10:34")
    assert {"location:vostochny-cosmodrome", "source:ria-novosti"} <= await links("04:40")
    assert {"location:izmail", "location:reni", "source:telegram"} <= await links("07:45")

    before = await _snapshot(conn)
    assert await load_sample_if_empty(conn) is None
    assert await _snapshot(conn) == before


async def test_a_database_with_a_blog_is_left_alone(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO blogs (slug, title, published_at) VALUES ('mine', 'Mine', now())")
    assert await load_sample_if_empty(conn) is None
    assert await conn.fetchval("SELECT count(*) FROM entries") == 0
    assert await conn.fetchval("SELECT count(*) FROM blogs") == 1


async def test_two_servers_starting_at_once_load_it_once(db_dsn: str) -> None:
    a, b = await connect(db_dsn), await connect(db_dsn)
    try:
        results = await asyncio.gather(load_sample_if_empty(a), load_sample_if_empty(b))
        assert sorted(results, key=str) == ["1 blog, 48 entries", None]
        assert await a.fetchval("SELECT count(*) FROM entries") == 48
    finally:
        await a.close()
        await b.close()
