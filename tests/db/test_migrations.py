from __future__ import annotations

import asyncpg
import pytest

from db.migrate import load_migrations, migrate


async def test_migrations_apply_to_an_empty_database_and_a_second_run_is_a_no_op(
    conn: asyncpg.Connection,
) -> None:
    # the template already ran them; a second run applies nothing and changes nothing
    versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in load_migrations()]
    assert await migrate(conn) == []
    tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"blogs", "entries", "actors", "locations", "sources", "entry_actors", "media"} <= tables


async def test_two_runners_at_once_do_not_race(db_dsn: str) -> None:
    import asyncio

    from db.pool import connect

    # a blank database: both runners race to create everything
    admin = await connect(db_dsn)
    await admin.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await admin.close()
    a, b = await connect(db_dsn), await connect(db_dsn)
    try:
        first, second = await asyncio.gather(migrate(a), migrate(b))
        assert sorted([len(first), len(second)]) == [0, len(load_migrations())]
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("INSERT INTO actors (slug, name, kind) VALUES ('Bad Slug', 'x', 'person')", "actors_slug_check"),
        ("INSERT INTO actors (slug, name, kind) VALUES ('ok', 'x', 'alien')", "actors_kind_check"),
        (
            "INSERT INTO locations (slug, name, kind, latitude, longitude) VALUES ('x', 'x', 'city', 91, 0)",
            "locations_latitude_check",
        ),
        ("INSERT INTO sources (slug, name, kind) VALUES ('9tass', 'TASS', 'agency')", "sources_slug_check"),
    ],
)
async def test_constraints_keep_bad_data_out(conn: asyncpg.Connection, statement: str, constraint: str) -> None:
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await conn.execute(statement)
    assert caught.value.constraint_name == constraint


async def test_location_closure_follows_the_hierarchy(conn: asyncpg.Connection) -> None:
    add = "INSERT INTO locations (slug, name, kind, parent_id, latitude, longitude) VALUES ($1, $1, $2, $3, 0, 0) RETURNING id"
    ukraine = await conn.fetchval(add, "ukraine", "country", None)
    crimea = await conn.fetchval(add, "crimea", "region", ukraine)
    sevastopol = await conn.fetchval(add, "sevastopol", "city", crimea)
    inside = "SELECT array_agg(location_id ORDER BY depth) FROM location_closure WHERE ancestor_id = $1"
    assert await conn.fetchval(inside, ukraine) == [ukraine, crimea, sevastopol]
    russia = await conn.fetchval(add, "russia", "country", None)
    await conn.execute("UPDATE locations SET parent_id = $1 WHERE id = $2", russia, crimea)
    assert await conn.fetchval(inside, ukraine) == [ukraine]
    assert await conn.fetchval(inside, russia) == [russia, crimea, sevastopol]
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE locations SET parent_id = $1 WHERE id = $2", sevastopol, russia)


async def test_link_tables_follow_an_entry_that_moves_in_time(conn: asyncpg.Connection) -> None:
    blog = await conn.fetchval("INSERT INTO blogs (slug, title, published_at) VALUES ('b', 'B', now()) RETURNING id")
    entry = await conn.fetchval(
        "INSERT INTO entries (blog_id, published_at, headline) VALUES ($1, '2023-09-13T10:00Z', 'h') RETURNING id",
        blog,
    )
    actor = await conn.fetchval("INSERT INTO actors (slug, name, kind) VALUES ('a', 'A', 'person') RETURNING id")
    await conn.execute(
        "INSERT INTO entry_actors (entry_id, actor_id, published_at) VALUES ($1, $2, '2023-09-13T10:00Z')",
        entry,
        actor,
    )
    await conn.execute("UPDATE entries SET published_at = '2023-09-13T11:00Z' WHERE id = $1", entry)
    moved = await conn.fetchval("SELECT published_at FROM entry_actors WHERE entry_id = $1", entry)
    assert moved.isoformat() == "2023-09-13T11:00:00+00:00"
