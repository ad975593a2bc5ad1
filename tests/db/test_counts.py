"""count=true under one actor, source or location and a time window: added up from the per-day
link rollups (migration 0041) and the window's partial days, always equal to counting entries."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pytest

from db import entries, timeline, where
from db.filters import EntryFilter
from db.page import Page
from tests.db import factories as f
from tests.db.factories import T0

DAY = timedelta(days=1)
MIDNIGHT = T0.replace(hour=0)


def moment(days: float) -> datetime:
    return MIDNIGHT + timedelta(days=days)


WINDOWS = [
    (None, None),
    (moment(1), None),  # from a midnight
    (moment(1.3), None),  # from inside a day
    (None, moment(3)),
    (None, moment(3.7)),
    (moment(1), moment(3)),  # whole days only
    (moment(0.5), moment(3.25)),  # partial days at both ends
    (moment(2.1), moment(2.9)),  # inside one day
    (moment(2.9), moment(3.1)),  # across one midnight
    (moment(1.999), moment(2.001)),
    (moment(4), moment(2)),  # empty: until before since
    (moment(-10), moment(40)),  # wider than the data
]


@pytest.fixture
async def spread(conn: asyncpg.Connection) -> dict[str, int]:
    """Entries every 97 minutes over five days, linked to an actor, a source and a leaf city,
    with some entries linking only one of them; then moves across midnight, deletes and unlinks."""
    blog = await f.blog(conn)
    actor = await f.actor(conn, "counted-actor")
    other = await f.actor(conn, "other-actor")
    source = await f.source(conn, "counted-source")
    country = await f.location(conn, "a-country", 48.0, 31.0, kind="country")
    city = await f.location(conn, "leaf-city", 46.5, 30.7, parent=country)
    ids = []
    for i in range(5 * 24 * 60 // 97):
        ids.append(
            await f.entry(
                conn,
                blog,
                moment(0) + timedelta(minutes=97 * i),
                actors=[actor] if i % 3 else [actor, other],
                sources=[source] if i % 2 else [],
                locations=[city] if i % 5 else [country],
            )
        )
    # moves across midnight (the links follow their entry), deletes, unlinks and relinks
    await conn.execute(
        "UPDATE entries SET published_at = published_at + interval '11 hours' WHERE id = ANY($1)", ids[::7]
    )
    await conn.execute("DELETE FROM entries WHERE id = ANY($1)", ids[3::11])
    await conn.execute("DELETE FROM entry_actors WHERE entry_id = ANY($1) AND actor_id = $2", ids[5::13], actor)
    await conn.execute(
        "UPDATE entry_sources SET source_id = $1 WHERE entry_id = ANY($2)", source, ids[1::17]
    )  # an UPDATE statement that keeps the target: the rollup's update path
    return {"actor": actor, "source": source, "city": city, "country": country}


@pytest.mark.parametrize(("since", "until"), WINDOWS)
@pytest.mark.parametrize("kind", ["actor", "source", "location"])
async def test_counts_from_day_rollups_equal_counting_entries(
    conn: asyncpg.Connection, spread: dict[str, int], kind: str, since: datetime | None, until: datetime | None
) -> None:
    target = spread["city" if kind == "location" else kind]
    flt = EntryFilter(**{kind: (target,)}, since=since, until=until)  # type: ignore[arg-type]
    truth_sql, values = where.count_entries_sql(flt)
    truth = await conn.fetchval(truth_sql, *values)
    assert await timeline.count(conn, flt) == truth
    page = await entries.list_keys(conn, flt, page=Page(limit=5, count=True))
    assert page[0].total == truth
    if since is None and until is None:
        assert truth > 30  # the fixture links enough that a wrong rollup shows


@pytest.mark.parametrize(
    ("make", "reads_rollup"),
    [
        (lambda s: EntryFilter(actor=(s["actor"],), since=moment(0.5), until=moment(3.5)), True),
        (lambda s: EntryFilter(actor=(s["actor"],), actor_match="all"), True),
        (lambda s: EntryFilter(source=(s["source"],), until=moment(2)), True),
        # more than one actor, or anything besides the window: the rollups cannot answer exactly
        (lambda s: EntryFilter(actor=(s["actor"], s["actor"] + 1)), False),
        (lambda s: EntryFilter(actor=(s["actor"],), kind=("video",)), False),
    ],
)
async def test_which_counts_come_from_the_rollups(
    conn: asyncpg.Connection, spread: dict[str, int], make: object, reads_rollup: bool
) -> None:
    flt = make(spread)  # type: ignore[operator]
    sql, _ = timeline.count_plan(flt)
    assert ("link_day_counts" in sql) == reads_rollup, sql


async def test_a_location_with_places_inside_is_not_counted_from_its_own_links(
    conn: asyncpg.Connection, spread: dict[str, int]
) -> None:
    # the country's entries include the city's: its own links would undercount
    flt = EntryFilter(location=(spread["country"],), since=moment(1))
    truth_sql, values = where.count_entries_sql(flt)
    truth = await conn.fetchval(truth_sql, *values)
    own = await conn.fetchval(
        "SELECT count(*) FROM entry_locations WHERE location_id = $1 AND published_at >= $2",
        spread["country"],
        moment(1),
    )
    assert truth > own > 0
    assert await timeline.count(conn, flt) == truth
