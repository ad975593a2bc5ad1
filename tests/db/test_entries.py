"""The entry query layer against real PostgreSQL: every filter alone and combined, every sort,
page walking (also while entries are inserted), cursors, relations and plan shapes.

Expectations come from a Python model of the same small world (`World.expect`), never from
hard-coded answers: the SQL and the model must agree on every filter.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from db import entries, where
from db.errors import InvalidInput, NotFound
from db.filters import EntryFilter, EntrySort
from db.page import Cursors, Page
from db.pool import connect
from db.refs import Refs
from tests.db import factories as f
from tests.db.factories import at


class World(msgspec.Struct):
    ids: dict[str, int]
    # per entry: id, blog, published_at, updated_at, kind, headline, actors, locations, sources
    rows: list[dict[str, Any]]
    # location id -> ids of itself and everything inside it
    under: dict[int, set[int]]
    points: dict[int, tuple[float, float]]  # location id -> (lat, lon)

    def expect(self, flt: EntryFilter, sort: EntrySort = "-published_at") -> list[int]:
        keep = [r for r in self.rows if self.matches(r, flt)]
        col = sort.lstrip("-")
        keep.sort(key=lambda r: (r[col], r["id"]), reverse=sort.startswith("-"))
        return [r["id"] for r in keep]

    def ref(self, ref: int | str) -> int:
        return ref if isinstance(ref, int) else self.ids[ref]

    def matches(self, r: dict[str, Any], flt: EntryFilter) -> bool:
        checks: list[bool] = []
        if flt.blog:
            checks.append(r["blog"] in {self.ref(b) for b in flt.blog})
        if flt.actor:
            want = {self.ref(a) for a in flt.actor}
            checks.append(want <= r["actors"] if flt.actor_match == "all" else bool(want & r["actors"]))
        if flt.location:
            inside = set().union(*(self.under[self.ref(loc)] for loc in flt.location))
            checks.append(bool(inside & r["locations"]))
        if flt.source:
            checks.append(bool({self.ref(s) for s in flt.source} & r["sources"]))
        if flt.since:
            checks.append(r["published_at"] >= flt.since)
        if flt.until:
            checks.append(r["published_at"] < flt.until)
        if flt.updated_since:
            checks.append(r["updated_at"] >= flt.updated_since)
        if flt.q:
            # the model knows the two forms the table uses: a word, and "a or b"
            checks.append(any(word in r["text"].lower() for word in flt.q.lower().split(" or ")))
        if flt.kind:
            checks.append(r["kind"] in flt.kind)
        if flt.bbox:
            lon0, lat0, lon1, lat1 = flt.bbox
            checks.append(
                any(lat0 <= self.points[i][0] <= lat1 and lon0 <= self.points[i][1] <= lon1 for i in r["locations"])
            )
        checks.extend(self.matches(r, s) for s in flt.and_)
        if flt.or_:
            checks.append(any(self.matches(r, s) for s in flt.or_))
        if flt.not_:
            checks.append(not self.matches(r, flt.not_))
        return all(checks)


WORDS = ["drone", "missile", "grain", "talks", "ceasefire"]
KINDS = ["post", "post", "video", "interactive", "read_more"]


async def build_world(conn: asyncpg.Connection, n: int = 40) -> World:
    ids: dict[str, int] = {}
    ids["kyiv-live"] = await f.blog(conn, "kyiv-live")
    ids["gaza-live"] = await f.blog(conn, "gaza-live")
    ids["putin"] = await f.actor(conn, "vladimir-putin", "Vladimir Putin", "person", ["Putin", "Путин"], "RU")
    ids["zelensky"] = await f.actor(conn, "volodymyr-zelensky", "Volodymyr Zelensky", "person", ["Zelenskyy"], "UA")
    ids["peskov"] = await f.actor(conn, "dmitry-peskov", "Dmitry Peskov", "person", ["Peskov", "Песков"], "RU")
    ids["un"] = await f.actor(conn, "united-nations", "United Nations", "organization", ["UN"])
    ids["ukraine"] = await f.location(conn, "ukraine", 49.0, 32.0, "country", country="UA")
    ids["crimea"] = await f.location(conn, "crimea", 45.3, 34.4, "region", ids["ukraine"], country="UA")
    ids["sevastopol"] = await f.location(conn, "sevastopol", 44.6, 33.5, "city", ids["crimea"], country="UA")
    ids["kyiv"] = await f.location(conn, "kyiv", 50.45, 30.52, "city", ids["ukraine"], country="UA")
    ids["russia"] = await f.location(conn, "russia", 61.5, 105.3, "country", country="RU")
    ids["moscow"] = await f.location(conn, "moscow", 55.75, 37.62, "city", ids["russia"], country="RU")
    ids["black-sea"] = await f.location(conn, "black-sea", 43.4, 34.3, "water")
    ids["tass"] = await f.source(conn, "tass", "agency")
    ids["reuters"] = await f.source(conn, "reuters", "agency")
    ids["telegram"] = await f.source(conn, "telegram", "social")
    for short, slug in (
        ("putin", "vladimir-putin"),
        ("zelensky", "volodymyr-zelensky"),
        ("peskov", "dmitry-peskov"),
        ("un", "united-nations"),
    ):
        ids[slug] = ids[short]
    actors = [ids[a] for a in ("putin", "zelensky", "peskov", "un")]
    locs = [ids[x] for x in ("sevastopol", "kyiv", "moscow", "black-sea", "crimea")]
    srcs = [ids[s] for s in ("tass", "reuters", "telegram")]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        # some entries share a published_at: ties must be broken by id
        published = at(10 * (i // 3) * 3 + (i % 3 == 2) * 7)
        ea = {actors[j] for j in range(4) if (i >> j) & 1}
        el = {locs[i % 5]} | ({locs[(i + 2) % 5]} if i % 4 == 0 else set())
        es = {srcs[i % 3]} if i % 5 else set()
        word = WORDS[i % 5]
        headline = f"Update {i}: {word} report"
        blog_id = ids["kyiv-live"] if i % 3 else ids["gaza-live"]
        eid = await f.entry(
            conn,
            blog_id,
            published,
            headline,
            [f"Paragraph about {word}."],
            KINDS[i % 5],
            actors={a: ("speaker" if a == ids["peskov"] else "mentioned") for a in ea},
            locations=sorted(el),
            sources=sorted(es),
        )
        rows.append(
            {
                "id": eid,
                "blog": blog_id,
                "published_at": published,
                "kind": KINDS[i % 5],
                "text": headline + " " + word,
                "actors": ea,
                "locations": el,
                "sources": es,
            }
        )
    # spread updated_at, and make it disagree with published_at order
    for k, r in enumerate(rows):
        r["updated_at"] = at(5000 - 7 * ((k * 13) % len(rows)))
    await conn.execute("ALTER TABLE entries DISABLE TRIGGER entries_touch")
    await conn.executemany(
        "UPDATE entries SET updated_at = $2 WHERE id = $1", [(r["id"], r["updated_at"]) for r in rows]
    )
    await conn.execute("ALTER TABLE entries ENABLE TRIGGER entries_touch")
    under: dict[int, set[int]] = {}
    for rec in await conn.fetch("SELECT ancestor_id, location_id FROM location_closure"):
        under.setdefault(rec["ancestor_id"], set()).add(rec["location_id"])
    points = {r["id"]: (r["latitude"], r["longitude"]) for r in await conn.fetch("SELECT * FROM locations")}
    return World(ids=ids, rows=rows, under=under, points=points)


@pytest.fixture
async def world(conn: asyncpg.Connection) -> World:
    return await build_world(conn)


async def walk(conn: asyncpg.Connection, flt: EntryFilter, sort: EntrySort, limit: int) -> list[int]:
    seen: list[int] = []
    page = Page(limit=limit)
    for _ in range(200):
        got = await entries.list_entries(conn, flt, sort, page)
        assert len(got.rows) <= limit
        seen += [r.id for r in got.rows]
        if not got.has_next:
            return seen
        assert got.next_key is not None
        page = Page(limit=limit, after=got.next_key)
    raise AssertionError("the walk did not end")


T = at


FILTERS: dict[str, Callable[[World], EntryFilter]] = {
    "none": lambda w: EntryFilter(),
    "blog-slug": lambda w: EntryFilter(blog=("kyiv-live",)),
    "blog-id": lambda w: EntryFilter(blog=(w.ids["gaza-live"],)),
    "two-blogs": lambda w: EntryFilter(blog=("kyiv-live", w.ids["gaza-live"])),
    "actor": lambda w: EntryFilter(actor=("dmitry-peskov",)),
    "actor-id": lambda w: EntryFilter(actor=(w.ids["putin"],)),
    "actors-any": lambda w: EntryFilter(actor=("vladimir-putin", "united-nations")),
    "actors-all": lambda w: EntryFilter(actor=("vladimir-putin", "united-nations"), actor_match="all"),
    "actor-window": lambda w: EntryFilter(actor=("volodymyr-zelensky",), since=T(60), until=T(300)),
    "location-leaf": lambda w: EntryFilter(location=("sevastopol",)),
    "location-subtree": lambda w: EntryFilter(location=("crimea",)),
    "location-country": lambda w: EntryFilter(location=("ukraine",)),
    "locations-or": lambda w: EntryFilter(location=("moscow", "black-sea")),
    "source": lambda w: EntryFilter(source=("tass",)),
    "sources-or": lambda w: EntryFilter(source=("tass", "telegram")),
    "since": lambda w: EntryFilter(since=T(120)),
    "until": lambda w: EntryFilter(until=T(120)),
    "since-until-edges": lambda w: EntryFilter(since=T(90), until=T(180)),
    "updated-since": lambda w: EntryFilter(updated_since=T(4900)),
    "q": lambda w: EntryFilter(q="drone"),
    "q-or": lambda w: EntryFilter(q="drone or grain"),
    "kind": lambda w: EntryFilter(kind=("video",)),
    "kinds": lambda w: EntryFilter(kind=("video", "read_more")),
    "bbox-crimea": lambda w: EntryFilter(bbox=(33.0, 44.0, 35.0, 46.0)),
    "bbox-empty": lambda w: EntryFilter(bbox=(-10.0, -10.0, -5.0, -5.0)),
    "bbox+kind": lambda w: EntryFilter(bbox=(30.0, 44.0, 35.0, 51.0), kind=("post", "video")),
    "bbox+location": lambda w: EntryFilter(bbox=(33.0, 44.0, 35.0, 46.0), location=("ukraine",)),
    "bbox+actor": lambda w: EntryFilter(bbox=(30.0, 44.0, 38.0, 56.0), actor=("vladimir-putin",)),
    "actor+location": lambda w: EntryFilter(actor=("vladimir-putin",), location=("ukraine",)),
    # a wide location set and a condition on the entry: walked by date, not driven per location
    "location-country+kind": lambda w: EntryFilter(location=("ukraine",), kind=("video",)),
    "location-leaf+kind": lambda w: EntryFilter(location=("sevastopol",), kind=("post",)),
    "location-subtree+updated-since": lambda w: EntryFilter(location=("crimea",), updated_since=T(4900)),
    "actor+blog+kind": lambda w: EntryFilter(actor=("dmitry-peskov",), blog=("kyiv-live",), kind=("post",)),
    "source+q+since": lambda w: EntryFilter(source=("reuters", "tass"), q="missile", since=T(30)),
    "location+actors-all+until": lambda w: EntryFilter(
        location=("ukraine",), actor=("vladimir-putin", "volodymyr-zelensky"), actor_match="all", until=T(500)
    ),
    "or": lambda w: EntryFilter(or_=(EntryFilter(actor=("dmitry-peskov",)), EntryFilter(location=("moscow",)))),
    # every branch has an actor or a source: the union of each branch's own driven page
    "or-actor|source": lambda w: EntryFilter(
        or_=(EntryFilter(actor=("dmitry-peskov",)), EntryFilter(source=("tass",)))
    ),
    "or-branches+rest": lambda w: EntryFilter(
        kind=("post",),
        since=T(30),
        or_=(
            EntryFilter(actor=("vladimir-putin", "volodymyr-zelensky"), actor_match="all"),
            EntryFilter(source=("telegram",), not_=EntryFilter(location=("ukraine",))),
        ),
    ),
    "and": lambda w: EntryFilter(and_=(EntryFilter(kind=("post",)), EntryFilter(source=("telegram",)))),
    "not": lambda w: EntryFilter(not_=EntryFilter(location=("ukraine",))),
    "actor-not-source": lambda w: EntryFilter(actor=("vladimir-putin",), not_=EntryFilter(source=("tass",))),
    "nested": lambda w: EntryFilter(
        blog=("kyiv-live",),
        or_=(
            EntryFilter(q="grain"),
            EntryFilter(and_=(EntryFilter(actor=("united-nations",)),), not_=EntryFilter(kind=("post",))),
        ),
    ),
}
SORTS: list[EntrySort] = ["-published_at", "published_at", "-updated_at", "updated_at"]


@pytest.mark.parametrize("name", list(FILTERS))
async def test_each_filter_matches_the_model_in_one_page(conn: asyncpg.Connection, world: World, name: str) -> None:
    flt = FILTERS[name](world)
    got = await entries.list_entries(conn, flt, "-published_at", Page(limit=200, count=True))
    want = world.expect(flt)
    assert [r.id for r in got.rows] == want
    assert got.total == len(want)
    assert not got.has_next


@pytest.mark.parametrize("name", ["actor", "actors-all", "location-subtree", "q-or", "bbox-crimea", "nested", "not"])
async def test_entry_matches_agrees_with_the_lists(conn: asyncpg.Connection, world: World, name: str) -> None:
    # streams decide "does this changed entry match?" with the same SQL as the lists
    flt = FILTERS[name](world)
    some = [r["id"] for r in world.rows[::2]]
    assert await where.entry_matches(conn, flt, some) == set(world.expect(flt)) & set(some)


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize(
    "name",
    [
        "none",
        "blog-slug",
        "actors-any",
        "actors-all",
        "location-subtree",
        "bbox+kind",
        "source+q+since",
        "or",
        "or-actor|source",
        "or-branches+rest",
        "not",
    ],
)
async def test_walking_every_page_returns_each_row_once_in_order(
    conn: asyncpg.Connection, world: World, name: str, sort: EntrySort
) -> None:
    flt = FILTERS[name](world)
    assert await walk(conn, flt, sort, limit=3) == world.expect(flt, sort)


@pytest.mark.parametrize("sort", SORTS)
async def test_backward_pages_mirror_forward_pages(conn: asyncpg.Connection, world: World, sort: EntrySort) -> None:
    flt = EntryFilter(actor=("vladimir-putin", "peskov-missing")[:1])
    want = world.expect(flt, sort)
    last = await entries.list_entries(conn, flt, sort, Page(limit=4, direction="backward"))
    assert [r.id for r in last.rows] == want[-4:]
    assert last.has_previous
    assert not last.has_next
    assert last.previous_key is not None
    before = await entries.list_entries(conn, flt, sort, Page(limit=4, direction="backward", before=last.previous_key))
    assert [r.id for r in before.rows] == want[-8:-4]
    assert before.has_next


async def test_unknown_references_are_not_found_naming_the_field(conn: asyncpg.Connection, world: World) -> None:
    for field in ("blog", "actor", "location", "source"):
        with pytest.raises(NotFound) as caught:
            await entries.list_entries(conn, EntryFilter(**{field: ("no-such-thing",)}))
        assert caught.value.field == field
    with pytest.raises(NotFound):
        await entries.list_entries(conn, EntryFilter(or_=(EntryFilter(actor=(999999,)),)))


async def test_relations_come_in_batches_with_roles(conn: asyncpg.Connection, world: World) -> None:
    page = await entries.list_entries(conn, EntryFilter(actor=("dmitry-peskov",)), page=Page(limit=5))
    linked = await entries.linked_by_ids(conn, Refs(), [r.id for r in page.rows])
    full = [linked[r.id] for r in page.rows]
    for e, model in zip(full, (next(r for r in world.rows if r["id"] == row.id) for row in page.rows), strict=True):
        assert {a.actor.id for a in e.actors} == model["actors"]
        assert {a.role for a in e.actors if a.actor.slug == "dmitry-peskov"} == {"speaker"}
        assert {loc.id for loc in e.locations} == model["locations"]
        assert {s.id for s in e.sources} == model["sources"]
        assert e.blog.id == model["blog"]


async def test_get_entry_and_media(conn: asyncpg.Connection) -> None:
    b = await f.blog(conn)
    eid = await f.entry(
        conn,
        b,
        at(0),
        media=[
            {"url": "https://img/1.jpg", "caption": "Smoke", "credit": "Reuters"},
            {"kind": "embed", "embed_author": "Ministry", "embed_handle": "@mod"},
        ],
    )
    e = await entries.get_entry(conn, eid)
    assert [m.caption for m in e.media] == ["Smoke", None]
    assert e.media[0].embed is None
    assert e.media[1].embed is not None
    assert e.media[1].embed.handle == "@mod"
    with pytest.raises(NotFound):
        await entries.get_entry(conn, eid + 1000)


# ---------------------------------------------------------------- cursors

CURSORS = Cursors("test-secret")


async def test_cursor_round_trip_and_binding() -> None:
    flt = EntryFilter(actor=("vladimir-putin",))
    key = (at(10), 42)
    token = CURSORS.encode(key, sort="-published_at", filter=flt)
    assert CURSORS.decode(token, sort="-published_at", filter=flt, value_type=datetime) == key
    with pytest.raises(InvalidInput, match="another sort or other filters"):
        CURSORS.decode(token, sort="published_at", filter=flt, value_type=datetime)
    with pytest.raises(InvalidInput, match="another sort or other filters"):
        CURSORS.decode(token, sort="-published_at", filter=EntryFilter(), value_type=datetime)
    with pytest.raises(InvalidInput):
        Cursors("another-secret").decode(token, sort="-published_at", filter=flt, value_type=datetime)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),
        lambda t: t[:5],
        lambda t: "x" + t,
        lambda t: "not a cursor!",
        lambda t: "",
        lambda t: t.replace(t[10], "A" if t[10] != "A" else "B", 1),
    ],
)
async def test_tampered_cursors_are_refused(tamper: Callable[[str], str]) -> None:
    token = CURSORS.encode((at(0), 7), sort="-published_at", filter=None)
    with pytest.raises(InvalidInput) as caught:
        CURSORS.decode(tamper(token), sort="-published_at", filter=None, value_type=datetime)
    assert caught.value.field == "cursor"


async def test_a_forged_payload_with_a_valid_shape_is_refused() -> None:
    import base64

    body = json.dumps([1, "-published_at", "0" * 16, "2023-09-13T00:00:00+00:00", 1]).encode()
    forged = base64.urlsafe_b64encode(body + b"\0" * 16).rstrip(b"=").decode()
    with pytest.raises(InvalidInput):
        CURSORS.decode(forged, sort="-published_at", filter=None, value_type=datetime)


# ---------------------------------------------------------------- concurrency


async def test_walking_while_entries_are_inserted_sees_each_old_row_once(
    conn: asyncpg.Connection, db_dsn: str, world: World
) -> None:
    writer = await connect(db_dsn)
    stop = asyncio.Event()
    inserted: list[int] = []

    async def insert_forever() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            # new entries land at the top and in the middle of the list being walked
            when = at(10_000 + k) if k % 2 else at(150 + k / 100)
            inserted.append(
                await f.entry(writer, world.ids["kyiv-live"], when, f"Live {k}", actors=[world.ids["putin"]])
            )
            await asyncio.sleep(0)

    task = asyncio.create_task(insert_forever())
    try:
        for flt in (EntryFilter(), EntryFilter(actor=("vladimir-putin",))):
            before = set(world.expect(flt))
            seen = await walk(conn, flt, "-published_at", limit=2)
            assert len(seen) == len(set(seen)), "a row came twice"
            assert before <= set(seen), "a row that existed before the walk was missed"
            assert set(seen) - before <= set(inserted)
    finally:
        stop.set()
        await task
        await writer.close()
    assert inserted, "the writer never ran"


# ---------------------------------------------------------------- plans


async def _generic_plan(conn: asyncpg.Connection, sql: str, values: list[Any], mode: str = "generic") -> str:
    """EXPLAIN of the statement's generic plan, as PostgreSQL 15 would cache it after five runs
    (mode "custom": the plan made for these values)."""
    literals = []
    for v in values:
        if isinstance(v, list):
            literals.append("ARRAY[" + ",".join(str(int(x)) for x in v) + "]::bigint[]")
        elif isinstance(v, datetime):
            literals.append(f"'{v.isoformat()}'::timestamptz")
        else:
            literals.append(str(int(v)))
    async with conn.transaction():
        await conn.execute(f"SET LOCAL plan_cache_mode = force_{mode}_plan")
        await conn.execute(f"PREPARE q AS {sql}")
        try:
            plan = await conn.fetch(f"EXPLAIN EXECUTE q({', '.join(literals)})")
        finally:
            await conn.execute("DEALLOCATE q")
    return "\n".join(r[0] for r in plan)


async def test_actor_window_plan_is_driven_by_the_link_index_even_when_generic(conn: asyncpg.Connection) -> None:
    # enough rows, skewed like real coverage (one actor in 1 of 3 entries, another in 1 of 500),
    # that scanning entries by date or sorting an actor's whole history would show in the plan
    blog = await f.blog(conn)
    popular = await f.actor(conn, "popular")
    rare = await f.actor(conn, "rare")
    await conn.execute(
        "INSERT INTO entries (blog_id, published_at, headline) SELECT $1, $2::timestamptz + i * interval '1 minute', 'h'"
        " FROM generate_series(1, 30000) i",
        blog,
        at(0),
    )
    await conn.execute(
        "INSERT INTO entry_actors (entry_id, actor_id, published_at)"
        " SELECT id, CASE WHEN id % 500 = 0 THEN $2::bigint ELSE $1::bigint END, published_at FROM entries"
        " WHERE id % 3 = 0 OR id % 500 = 0",
        popular,
        rare,
    )
    await conn.execute("ANALYZE")
    for actors in ((popular,), (rare,), (popular, rare)):
        flt = EntryFilter(actor=actors, since=at(1000), until=at(1000 + 30 * 24 * 60))
        sql, values = where.list_entries_sql(flt, "-published_at", Page(limit=50, after=(at(20000), 10**9)))
        plan = await _generic_plan(conn, sql, values)
        # the link index drives: a range scan per actor, in index order, stopped by the LIMIT
        assert (
            "Index Only Scan using entry_actors_actor_idx" in plan or "Index Scan using entry_actors_actor_idx" in plan
        ), plan
        # one actor: its links joined to entries in index order; several: one range scan each
        assert ("actor_id = d.id" in plan) == (len(actors) > 1), plan
        assert "Seq Scan" not in plan, plan
        # entries are reached by primary key, never scanned by date
        assert "entries_published_idx" not in plan, plan
        # the only sort is of the few rows the per-actor LIMITs let through, above the lateral
        assert plan.count("Sort Key") <= 1, plan
    # both at once (actor_match=all): the rarer drives and the other is probed per link on its
    # index, never both actors' whole link lists hashed (190 ms for two popular actors at 1M)
    flt = await where.rarest_actor_first(conn, EntryFilter(actor=(popular, rare), actor_match="all"))
    assert flt.actor[0] == rare
    sql, values = where.list_entries_sql(flt, "-published_at", Page(limit=50))
    for plan in (await _generic_plan(conn, sql, values), await _generic_plan(conn, sql, values, "custom")):
        assert "Hash" not in plan, plan
        assert "SubPlan" in plan, plan
        assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize(
    ("name", "union"), [("or-actor|source", True), ("or-branches+rest", True), ("or", False), ("nested", False)]
)
async def test_an_or_of_linked_branches_is_the_union_of_their_driven_pages(
    conn: asyncpg.Connection, world: World, name: str, union: bool
) -> None:
    # each branch walks its own link index (a popular actor | a rare source walked by date tested
    # the OR on every entry until 50 matched: 45-90 ms at a million entries)
    flt = await where.resolve_entry_filter(conn, FILTERS[name](world))
    sql, _ = where.list_entries_sql(flt, "-published_at", Page(limit=10))
    assert (" UNION " in sql) == union, sql
    if union:
        # every branch read from its link index (one actor or source: its links joined in order)
        assert sql.count("FROM entry_actors l") + sql.count("FROM entry_sources l") == len(flt.or_), sql


@pytest.mark.parametrize(
    ("location", "kind", "driven"),
    [
        ("sevastopol", (), True),
        ("sevastopol", ("video",), True),  # one location: its top-N joined to entries is cheap
        ("ukraine", (), True),  # links alone: one index range per location inside
        ("ukraine", ("video",), False),  # many locations, each joined: walk entries by date instead
    ],
)
async def test_wide_location_sets_drive_the_list_only_from_the_links_alone(
    conn: asyncpg.Connection, world: World, location: str, kind: tuple[str, ...], driven: bool
) -> None:
    flt = EntryFilter(location=(location,), kind=kind)
    resolved = await where.resolve_entry_filter(conn, flt)
    under = await where.locations_under(conn, resolved)
    sql, _ = where.list_entries_sql(
        resolved,
        "-published_at",
        Page(limit=10),
        drive_locations=where.driving_is_small(under),
        joined_locations=where.driving_is_narrow(under),
    )
    assert ("CROSS JOIN LATERAL" in sql) == driven, sql
    assert [r.id for r in (await entries.list_entries(conn, flt, page=Page(limit=200))).rows] == world.expect(flt)
