"""The synthetic data generator, at a small N, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from db.generate import BULK_TABLES, BYPASSED_TRIGGERS, generate
from db.pool import connect
from tests.conftest import with_database
from tests.db.test_bitcount import assert_bits_exact

N = 3000
END = datetime(2026, 1, 1, tzinfo=UTC)
SITREP = Path(sys.executable).parent / "sitrep"

# what a generated database looks like, table by table, for comparing two of them
CHECKSUMS = {
    table: f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
    for table in (
        "blogs",
        "entries",
        "actors",
        "locations",
        "sources",
        "entry_actors",
        "entry_locations",
        "entry_sources",
        "media",
    )
}


@asynccontextmanager
async def fresh_database(server_dsn: str, template: str) -> AsyncIterator[asyncpg.Connection]:
    name = f"sitrep_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        conn = await connect(with_database(server_dsn, name))
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def checksums(conn: asyncpg.Connection) -> dict[str, str]:
    return {table: await conn.fetchval(sql) for table, sql in CHECKSUMS.items()}


@pytest.fixture
async def generated(conn: asyncpg.Connection) -> asyncpg.Connection:
    await generate(conn, entries=N, seed=1, end=END)
    return conn


async def test_the_same_seed_writes_the_same_rows_and_another_seed_other_rows(
    server_dsn: str, template_db: str
) -> None:
    runs = []
    for seed in (7, 7, 8):
        async with fresh_database(server_dsn, template_db) as conn:
            await generate(conn, entries=N, seed=seed, end=END)
            runs.append(await checksums(conn))
    assert runs[0] == runs[1]
    assert all(value is not None for value in runs[0].values())
    for table in ("entries", "entry_actors", "entry_locations", "entry_sources", "actors"):
        assert runs[0][table] != runs[2][table], table


async def test_link_averages_follow_live_coverage(generated: asyncpg.Connection) -> None:
    conn = generated
    assert await conn.fetchval("SELECT count(*) FROM entries") == N
    per_entry = {
        table: await conn.fetchval(f"SELECT count(*)::float / {N} FROM {table}")
        for table in ("entry_actors", "entry_locations", "entry_sources")
    }
    assert 2.7 <= per_entry["entry_actors"] <= 3.3
    assert 1.8 <= per_entry["entry_locations"] <= 2.2
    assert 1.35 <= per_entry["entry_sources"] <= 1.65
    speakers = await conn.fetchval("SELECT avg((role = 'speaker')::int)::float FROM entry_actors")
    assert 0.2 <= speakers <= 0.4
    # Zipf-like: the most popular actor is in a few percent of entries, the median one in far fewer
    shares = [
        r["n"] / N for r in await conn.fetch("SELECT count(*) AS n FROM entry_actors GROUP BY actor_id ORDER BY n DESC")
    ]
    assert 0.02 <= shares[0] <= 0.10
    assert shares[len(shares) // 2] < shares[0] / 5
    assert 300 <= await conn.fetchval("SELECT count(*) FROM actors") <= 600
    assert 35 <= await conn.fetchval("SELECT count(*) FROM sources") <= 50


async def test_full_text_search_for_drone_matches_a_few_percent(generated: asyncpg.Connection) -> None:
    share = await generated.fetchval(
        "SELECT avg((search @@ websearch_to_tsquery('english', 'drone'))::int)::float FROM entries"
    )
    assert 0.01 <= share <= 0.10


async def test_every_link_carries_its_entrys_published_at(generated: asyncpg.Connection) -> None:
    for table in ("entry_actors", "entry_locations", "entry_sources"):
        mismatched = await generated.fetchval(
            f"SELECT count(*) FROM {table} l JOIN entries e ON e.id = l.entry_id "
            "WHERE l.published_at IS DISTINCT FROM e.published_at"
        )
        orphans = await generated.fetchval(
            f"SELECT count(*) FROM {table} l WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = l.entry_id)"
        )
        assert (mismatched, orphans) == (0, 0), table


async def test_locations_form_a_country_region_city_hierarchy(generated: asyncpg.Connection) -> None:
    kinds: dict[str, int] = {
        r["kind"]: r["n"] for r in await generated.fetch("SELECT kind, count(*) AS n FROM locations GROUP BY kind")
    }
    assert 10 <= kinds["country"] < kinds["region"] < kinds["city"]
    assert 200 <= sum(kinds.values()) <= 600
    chains = await generated.fetchval(
        """SELECT count(*) FROM locations city
             JOIN locations region ON region.id = city.parent_id AND region.kind = 'region'
             JOIN locations country ON country.id = region.parent_id AND country.kind = 'country'
            WHERE city.kind = 'city' AND country.parent_id IS NULL"""
    )
    assert chains == kinds["city"]
    # the closure trigger ran for them: a city is inside its country, two levels up
    assert await generated.fetchval("SELECT count(*) FROM location_closure WHERE depth = 2") == kinds["city"]


async def test_three_years_of_entries_over_about_a_blog_a_day(generated: asyncpg.Connection) -> None:
    span = await generated.fetchrow("SELECT min(published_at) AS first, max(published_at) AS last FROM entries")
    assert span is not None
    first, last = span["first"], span["last"]
    assert END - timedelta(days=3 * 366) <= first < END - timedelta(days=3 * 365 - 5)
    assert END - timedelta(days=2) <= last < END
    assert 1090 <= await generated.fetchval("SELECT count(*) FROM blogs") <= 1100
    assert await generated.fetchval("SELECT count(DISTINCT blog_id) FROM entries") > 1000
    late = await generated.fetchval(
        "SELECT count(*) FROM entries e JOIN blogs b ON b.id = e.blog_id WHERE e.published_at < b.published_at"
    )
    assert late == 0
    media = await generated.fetchval("SELECT count(*) FROM media")
    assert 0.03 * N <= media <= 0.2 * N


async def test_identity_sequences_continue_after_the_generated_ids(generated: asyncpg.Connection) -> None:
    conn = generated
    top = {t: await conn.fetchval(f"SELECT max(id) FROM {t}") for t in ("blogs", "entries", "actors", "media")}
    blog = await conn.fetchval(
        "INSERT INTO blogs (slug, title, published_at) VALUES ('after-generate', 'After', now()) RETURNING id"
    )
    entry = await conn.fetchval(
        "INSERT INTO entries (blog_id, published_at, headline) VALUES ($1, now(), 'After') RETURNING id", blog
    )
    actor = await conn.fetchval(
        "INSERT INTO actors (slug, name, kind) VALUES ('after-generate', 'After', 'person') RETURNING id"
    )
    media = await conn.fetchval(
        "INSERT INTO media (entry_id, position, kind) VALUES ($1, 0, 'image') RETURNING id", entry
    )
    assert (blog, entry, actor, media) == (top["blogs"] + 1, top["entries"] + 1, top["actors"] + 1, top["media"] + 1)


async def test_entry_counts_match_the_links(generated: asyncpg.Connection) -> None:
    for table, column, counts in (
        ("entry_actors", "actor_id", "actor_entry_counts"),
        ("entry_sources", "source_id", "source_entry_counts"),
        ("entry_locations", "location_id", "location_entry_counts"),
    ):
        wrong = await generated.fetchval(
            f"""SELECT count(*) FROM (SELECT {column}, count(*) AS n FROM {table} GROUP BY {column}) real
                  FULL JOIN (SELECT * FROM {counts} WHERE entry_count > 0) kept USING ({column})
                 WHERE real.n IS DISTINCT FROM kept.entry_count"""
        )
        assert wrong == 0, counts
    # the per-blog and per-hour rollups the timeline and totals read
    wrong_blogs = await generated.fetchval(
        """SELECT count(*) FROM (SELECT blog_id, count(*) AS n FROM entries GROUP BY blog_id) real
             FULL JOIN (SELECT * FROM blog_entry_counts WHERE entry_count > 0) kept USING (blog_id)
            WHERE real.n IS DISTINCT FROM kept.entry_count"""
    )
    assert wrong_blogs == 0
    wrong_hours = await generated.fetchval(
        """SELECT count(*) FROM (SELECT date_trunc('hour', published_at, 'UTC') AS hour, count(*) AS n
                                   FROM entries GROUP BY 1) real
             FULL JOIN (SELECT * FROM entry_hour_counts WHERE entry_count > 0) kept USING (hour)
            WHERE real.n IS DISTINCT FROM kept.entry_count"""
    )
    assert wrong_hours == 0
    # the per-day link rollups that count=true under one actor, source or location reads
    for letter, table, column in (
        ("a", "entry_actors", "actor_id"),
        ("s", "entry_sources", "source_id"),
        ("l", "entry_locations", "location_id"),
    ):
        wrong_days = await generated.fetchval(
            f"""SELECT count(*) FROM (SELECT {column} AS target_id, (published_at AT TIME ZONE 'UTC')::date AS day,
                                             count(*) AS n FROM {table} GROUP BY 1, 2) real
                 FULL JOIN (SELECT * FROM link_day_counts WHERE link = '{letter}' AND entry_count > 0) kept USING (target_id, day)
                WHERE real.n IS DISTINCT FROM kept.entry_count"""
        )
        assert wrong_days == 0, table
    # the entry bitmaps that every other count=true reads (migration 0050)
    await assert_bits_exact(generated)


async def test_every_trigger_the_bulk_load_skips_is_accounted_for(conn: asyncpg.Connection) -> None:
    triggers = {
        r["tgname"]
        for r in await conn.fetch(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY($1::regclass[])",
            list(BULK_TABLES),
        )
    }
    assert triggers <= set(BYPASSED_TRIGGERS), (
        f"triggers the generator knows nothing of: {triggers - set(BYPASSED_TRIGGERS)}"
    )


async def test_a_second_run_appends_beside_existing_rows(generated: asyncpg.Connection) -> None:
    conn = generated
    before = await conn.fetchval("SELECT max(id) FROM entries")
    result = await generate(conn, entries=500, seed=1, end=END)
    assert result.entries == 500
    assert await conn.fetchval("SELECT count(*) FROM entries") == N + 500
    assert await conn.fetchval("SELECT min(id) FROM entries WHERE id > $1", before) == before + 1
    # the same seed draws the same names again: their slugs step aside
    assert await conn.fetchval("SELECT count(*) FROM actors") == 2 * result.actors
    assert await conn.fetchval("SELECT count(*) FROM actors WHERE slug ~ '-2$'") >= result.actors - 5
    await test_entry_counts_match_the_links(conn)


async def test_the_command_reports_progress_without_a_terminal(db_dsn: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "SITREP_DATA_DIR": str(tmp_path),
        "SITREP_SECRET": "test-secret",
        "TERM": "dumb",
    }
    proc = await asyncio.create_subprocess_exec(
        str(SITREP), "generate", "--entries", "250", "--seed", "3", "--end", "2026-01-01",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "generated 250 entries" in out.decode()
    assert "Traceback" not in err.decode()
    conn = await connect(db_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM entries") == 250
    finally:
        await conn.close()


async def test_the_command_refuses_a_bad_count_in_one_line(db_dsn: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "SITREP_DATA_DIR": str(tmp_path), "SITREP_SECRET": "x"}
    proc = await asyncio.create_subprocess_exec(
        str(SITREP), "generate", "--entries", "0",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "--entries" in err.decode()
    assert "Traceback" not in err.decode()


async def test_blogs_sets_how_many_blogs_share_the_entries(conn: asyncpg.Connection) -> None:
    result = await generate(conn, entries=500, seed=2, blogs=10, end=END)
    assert result.blogs == 10
    per_blog = [r["n"] for r in await conn.fetch("SELECT count(*) AS n FROM entries GROUP BY blog_id")]
    assert len(per_blog) == 10
    assert min(per_blog) >= 30
    assert await conn.fetchval("SELECT count(*) FROM blogs WHERE status = 'live'") == 1
