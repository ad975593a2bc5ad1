"""EntryFilter → SQL, once, for every reader: REST lists, GraphQL connections, the timeline,
and the stream's "does this changed entry match?" (`entry_matches`).

The SQL is composed from the fixed fragments below, chosen by which filter fields are set;
values only ever travel as `$n` parameters. References (ids or slugs) are resolved to ids
first (`resolve_entry_filter`), so every fragment compares integers and an unknown slug is
a `NotFound` naming the filter field, not an empty list.

Plans, measured at a million entries (bench/plans/):
- without a link filter, lists walk `entries_published_idx` / `entries_blog_published_idx`
  from the cursor (the row comparison is the index condition);
- with an actor, source or location filter and a published_at sort, the list is driven from
  the link table's `(x_id, published_at DESC, entry_id DESC)` index: one LATERAL top-N per
  linked id, merged. That shape does not depend on the values, so a generic plan (asyncpg
  prepares statements; PostgreSQL switches to a generic plan after five runs) is as good as a
  custom one. Filters whose best plan depends on the value (full-text `q`) ask for custom
  plans instead (`needs_custom_plan`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Literal

import asyncpg
import msgspec

from db.errors import NotFound
from db.filters import BBox, EntryFilter, EntrySort, Ref
from db.page import Page
from db.pool import plans_custom
from db.sql import query

RefKind = Literal["blog", "actor", "location", "source"]
_RESOLVERS: dict[RefKind, str] = {
    "blog": "resolve_blogs",
    "actor": "resolve_actors",
    "location": "resolve_locations",
    "source": "resolve_sources",
}
# more locations than this under a location filter: scan entries by date instead of one
# index range per location
_MAX_DRIVING_IDS = 64
# ... and more than this when each driven entry must also be read for another condition (kind,
# updated_since): a per-location top-N joined to entries is planned as a hash join over every
# entry the other condition allows, once per location (a country and kind=video: 720 ms at 1M
# entries, against 18 ms walking the kind's index by date)
_MAX_JOINED_DRIVING_IDS = 2

_READS_ENTRY = re.compile(r"\be\.")
ENTRY_COLUMNS = "e.id, e.blog_id, e.published_at, e.updated_at, e.created_at, e.kind, e.headline, e.body"


class Params:
    """Collects values and hands out their `$n` placeholders."""

    def __init__(self, *initial: Any) -> None:
        self.values: list[Any] = list(initial)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


# ---------------------------------------------------------------- references


async def resolve(conn: asyncpg.Connection, kind: RefKind, refs: tuple[Ref, ...] | list[Ref]) -> dict[Ref, int]:
    """ref → id for every ref; NotFound (field = kind) naming the first that matches nothing."""
    if not refs:
        return {}
    ids = [r for r in refs if isinstance(r, int)]
    slugs = [r for r in refs if isinstance(r, str)]
    found = await conn.fetch(query(_RESOLVERS[kind]), ids, slugs)
    by_id = {r["id"]: r["id"] for r in found}
    by_slug = {r["slug"]: r["id"] for r in found}
    out: dict[Ref, int] = {}
    for ref in refs:
        id_ = by_id.get(ref) if isinstance(ref, int) else by_slug.get(ref)
        if id_ is None:
            raise NotFound(f"there is no {kind} {ref!r}", field=kind)
        out[ref] = id_
    return out


def _walk(f: EntryFilter) -> Iterator[EntryFilter]:
    yield f
    for sub in (*f.and_, *f.or_, *((f.not_,) if f.not_ else ())):
        yield from _walk(sub)


async def resolve_entry_filter(conn: asyncpg.Connection, f: EntryFilter) -> EntryFilter:
    """The same filter with every reference (at any depth of and_/or_/not_) as an id.

    One query per kind of reference present, however deep the filter.
    """
    maps: dict[RefKind, dict[Ref, int]] = {}
    for kind in _RESOLVERS:
        refs = sorted({r for sub in _walk(f) for r in getattr(sub, kind)}, key=repr)
        maps[kind] = await resolve(conn, kind, refs)
    return rewrite(f, maps)


def rewrite(f: EntryFilter, maps: dict[RefKind, dict[Ref, int]]) -> EntryFilter:
    """`f` with each reference replaced by its id from `maps` (which holds every one)."""

    def ids(kind: RefKind, refs: tuple[Ref, ...]) -> tuple[Ref, ...]:
        return tuple(dict.fromkeys(maps[kind][r] for r in refs))

    return EntryFilter(
        blog=ids("blog", f.blog),
        actor=ids("actor", f.actor),
        actor_match=f.actor_match,
        location=ids("location", f.location),
        source=ids("source", f.source),
        since=f.since,
        until=f.until,
        updated_since=f.updated_since,
        q=f.q,
        kind=f.kind,
        bbox=f.bbox,
        and_=tuple(rewrite(s, maps) for s in f.and_),
        or_=tuple(rewrite(s, maps) for s in f.or_),
        not_=rewrite(f.not_, maps) if f.not_ else None,
    )


# ---------------------------------------------------------------- conditions

_ACTOR_ANY = "EXISTS (SELECT 1 FROM entry_actors la WHERE la.entry_id = e.id AND la.actor_id = ANY({}::bigint[]))"
_ACTOR_ONE = "EXISTS (SELECT 1 FROM entry_actors la WHERE la.entry_id = e.id AND la.actor_id = {}::bigint)"
_SOURCE_ANY = "EXISTS (SELECT 1 FROM entry_sources ls WHERE ls.entry_id = e.id AND ls.source_id = ANY({}::bigint[]))"
_LOCATION_UNDER = (
    "EXISTS (SELECT 1 FROM entry_locations ll JOIN location_closure lc ON lc.location_id = ll.location_id"
    " WHERE ll.entry_id = e.id AND lc.ancestor_id = ANY({}::bigint[]))"
)
_BBOX = (
    "EXISTS (SELECT 1 FROM entry_locations lb JOIN locations bl ON bl.id = lb.location_id"
    " WHERE lb.entry_id = e.id AND {box})"
)
_BOX = "bl.latitude BETWEEN {1}::float8 AND {3}::float8 AND bl.longitude BETWEEN {0}::float8 AND {2}::float8"
_BOX_WRAPPED = (
    "bl.latitude BETWEEN {1}::float8 AND {3}::float8 AND (bl.longitude >= {0}::float8 OR bl.longitude <= {2}::float8)"
)


def box(bbox: BBox, p: Params) -> str:
    """Locations `bl` inside the box (one that crosses the antimeridian has min_lon > max_lon)."""
    values = [p.add(float(v)) for v in bbox]
    return (_BOX_WRAPPED if bbox[0] > bbox[2] else _BOX).format(*values)


_SEARCH = "e.search @@ websearch_to_tsquery('english', {}::text)"


def conditions(f: EntryFilter, p: Params, *, time_col: str = "e.published_at", skip: str | None = None) -> list[str]:
    """The filter as SQL conditions over `entries e` (ANDed by the caller).

    `time_col` lets a driven query put since/until on the link table's copy of published_at;
    `skip` names the link filter the driving index already applies ("actor", "source",
    "location"; for actor_match=all, only the first actor is skipped; "actors": every actor, the
    driven query joins the others' links itself).
    """
    c: list[str] = []
    if f.blog:
        c.append(
            f"e.blog_id = {p.add(f.blog[0])}::bigint"
            if len(f.blog) == 1
            else f"e.blog_id = ANY({p.add(list(f.blog))}::bigint[])"
        )
    if f.actor and skip != "actors":
        if f.actor_match == "all":
            rest = f.actor[1:] if skip == "actor" else f.actor
            c.extend(_ACTOR_ONE.format(p.add(a)) for a in rest)
        elif skip != "actor":
            c.append(_ACTOR_ANY.format(p.add(list(f.actor))))
    if f.source and skip != "source":
        c.append(_SOURCE_ANY.format(p.add(list(f.source))))
    if f.location and skip != "location":
        c.append(_LOCATION_UNDER.format(p.add(list(f.location))))
    if f.since is not None:
        c.append(f"{time_col} >= {p.add(f.since)}::timestamptz")
    if f.until is not None:
        c.append(f"{time_col} < {p.add(f.until)}::timestamptz")
    if f.updated_since is not None:
        c.append(f"e.updated_at >= {p.add(f.updated_since)}::timestamptz")
    if f.q is not None:
        c.append(_SEARCH.format(p.add(f.q)))
    if f.kind:
        c.append(f"e.kind = ANY({p.add(list(f.kind))}::text[])")
    if f.bbox is not None and skip != "bbox":
        c.append(_BBOX.format(box=box(f.bbox, p)))
    c.extend(f"({where(sub, p)})" for sub in f.and_)
    if f.or_:
        c.append("(" + " OR ".join(f"({where(sub, p)})" for sub in f.or_) + ")")
    if f.not_ is not None:
        # NOT over a filter: entries the inner filter does not match (no NULLs can arise here)
        c.append(f"NOT ({where(f.not_, p)})")
    return c


def where(f: EntryFilter, p: Params) -> str:
    """The filter as one boolean SQL expression over `entries e`."""
    return " AND ".join(conditions(f, p)) or "TRUE"


def needs_custom_plan(f: EntryFilter) -> bool:
    """Whether the best plan depends on the values (then a cached generic plan can be 20x slower)."""
    return any(
        sub.q is not None or sub.bbox is not None or len(sub.blog) > 1 or sub.updated_since is not None
        for sub in _walk(f)
    )


# ---------------------------------------------------------------- lists

_DRIVERS: dict[str, tuple[str, str]] = {
    "actor": ("entry_actors", "actor_id"),
    "source": ("entry_sources", "source_id"),
    "location": ("entry_locations", "location_id"),
    "bbox": ("entry_locations", "location_id"),
}


def _driver(f: EntryFilter, sort: EntrySort, drive_locations: bool, drive_bbox: bool) -> str | None:
    """Which link index should drive the list, if any."""
    if sort not in ("-published_at", "published_at") or f.blog:
        return None  # the blog index is tighter than any link index; updated_at is not on links
    if f.actor:
        return "actor"
    if f.source:
        return "source"
    if f.location and drive_locations:
        return "location"
    if f.bbox is not None and drive_bbox:
        return "bbox"
    return None


def _keyset(page: Page, desc: bool, cols: str, p: Params) -> list[str]:
    out = []
    if page.after is not None:
        out.append(f"({cols}) {'<' if desc else '>'} ({p.add(page.after[0])}, {p.add(page.after[1])}::bigint)")
    if page.before is not None:
        out.append(f"({cols}) {'>' if desc else '<'} ({p.add(page.before[0])}, {p.add(page.before[1])}::bigint)")
    return out


def list_entries_sql(
    f: EntryFilter,
    sort: EntrySort,
    page: Page,
    *,
    drive_locations: bool = True,
    drive_bbox: bool = False,
    joined_locations: bool = True,
    joined_bbox: bool = True,
    columns: str = ENTRY_COLUMNS,
) -> tuple[str, list[Any]]:
    """One page of entries (limit + 1 rows, for has-next) in `sort` order, and its parameters.

    `f` must be resolved (ids only). `drive_locations` / `drive_bbox`: whether the location
    filter / the box covers few enough locations (`locations_under`,
    `bbox_locations`) to drive the list; `joined_locations` / `joined_bbox`: whether they are
    few enough to drive it even where each entry must be joined for another condition
    (`_MAX_JOINED_DRIVING_IDS`). The LIMIT is an integer the caller validated, written
    into the text so that the planner knows it (a `$n` limit makes generic plans guess).
    """
    p = Params()
    sql = _list_sql(
        f,
        sort,
        page,
        p,
        drive_locations=drive_locations,
        drive_bbox=drive_bbox,
        joined_locations=joined_locations,
        joined_bbox=joined_bbox,
        columns=columns,
    )
    return sql, p.values


def _or_branches(f: EntryFilter, sort: EntrySort) -> list[EntryFilter] | None:
    """`f`'s `or_` as whole filters (each branch ANDed with the rest of `f`) when every branch
    can be driven by an actor or source index, else None.

    Then the page is the top of the union of each branch's own top page (driven by its index),
    instead of a walk by date that tests the OR on every entry until enough match (an actor |
    a source at a million entries: 45-90 ms against 2-3 ms)."""
    if not f.or_ or sort not in ("-published_at", "published_at") or f.blog or f.actor or f.source:
        return None
    if f.location or f.bbox is not None:
        return None  # the location is the tighter driver already, or a box decides per request
    rest = msgspec.structs.replace(f, or_=())
    branches = []
    for sub in f.or_:
        if not (sub.actor or sub.source) or sub.blog:
            return None
        branches.append(sub if rest == EntryFilter() else msgspec.structs.replace(sub, and_=(*sub.and_, rest)))
    return branches


def _walk_sql(f: EntryFilter, sort: EntrySort, page: Page, p: Params, *, columns: str) -> str:
    """`_list_sql` with no location or box driving: by date, or by an actor's or source's links."""
    return _list_sql(
        f,
        sort,
        page,
        p,
        drive_locations=False,
        drive_bbox=False,
        joined_locations=False,
        joined_bbox=False,
        columns=columns,
    )


def _list_sql(
    f: EntryFilter,
    sort: EntrySort,
    page: Page,
    p: Params,
    *,
    drive_locations: bool,
    drive_bbox: bool,
    joined_locations: bool,
    joined_bbox: bool,
    columns: str,
) -> str:
    mark = len(p.values)
    limit = int(page.limit) + 1
    desc = sort.startswith("-")
    col = sort.lstrip("-")
    order_desc = desc != (page.direction == "backward")
    direction = "DESC" if order_desc else "ASC"
    branches = _or_branches(f, sort)
    if branches is not None:
        # the top `limit` of a union is within the union of each branch's top `limit`
        union = " UNION ".join("(" + _walk_sql(b, sort, page, p, columns="e.id") + ")" for b in branches)
        return (
            f"SELECT {columns} FROM entries e WHERE e.id IN ({union})"
            f" ORDER BY e.{col} {direction}, e.id {direction} LIMIT {limit}"
        )
    drive = _driver(f, sort, drive_locations, drive_bbox)
    if drive is None:
        conds = conditions(f, p) + _keyset(page, desc, f"e.{col}, e.id", p)
        return (
            f"SELECT {columns} FROM entries e WHERE {' AND '.join(conds) or 'TRUE'}"
            f" ORDER BY e.{col} {direction}, e.id {direction} LIMIT {limit}"
        )
    link, link_col = _DRIVERS[drive]
    one: str | None = None  # the driving id's parameter, when there is only one
    if drive == "bbox":
        assert f.bbox is not None
        driving = f"(SELECT bl.id FROM locations bl WHERE {box(f.bbox, p)}) d"
    elif drive == "location":
        driving = f"(SELECT DISTINCT location_id AS id FROM location_closure WHERE ancestor_id = ANY({p.add(list(f.location))}::bigint[])) d"
    elif drive == "actor" and f.actor_match == "all":
        one = f"{p.add(f.actor[0])}::bigint"
        driving = f"(SELECT {one} AS id) d"
    elif len(f.actor if drive == "actor" else f.source) == 1:
        one = f"{p.add((f.actor if drive == 'actor' else f.source)[0])}::bigint"
        driving = f"unnest(ARRAY[{one}]) AS d(id)"
    else:
        ids = list(f.actor if drive == "actor" else f.source)
        driving = f"unnest({p.add(ids)}::bigint[]) AS d(id)"
    inner = [f"l.{link_col} = d.id"]
    if drive == "actor" and f.actor_match == "all":
        # each other actor probed per link of the rarest (which drives, `rarest_actor_first`) on
        # its own index, in the driver's order, until the page is full. OFFSET 0 keeps each probe
        # a subplan: as a join, the planner guessed the two actors share ~1 entry and hashed both
        # whole link lists (both popular at 1M entries, 5% in common: 190 ms; probing: 2.4 ms;
        # 31,000 links and nothing in common, the worst: 81 ms, against 190 for the hash)
        rest = [
            f"EXISTS (SELECT 1 FROM entry_actors a{i} WHERE a{i}.actor_id = {p.add(a)}::bigint"
            f" AND a{i}.published_at = l.published_at AND a{i}.entry_id = l.entry_id OFFSET 0)"
            for i, a in enumerate(f.actor[1:], 1)
        ] + conditions(f, p, time_col="l.published_at", skip="actors")
    else:
        rest = conditions(f, p, time_col="l.published_at", skip=drive)
    inner += rest + _keyset(page, desc, "l.published_at, l.entry_id", p)
    # the entry row is needed inside only if a remaining condition reads it
    joined = any(_READS_ENTRY.search(c) for c in rest)
    if joined and not {"location": joined_locations, "bbox": joined_bbox}.get(drive, True):
        del p.values[mark:]  # the driven statement's values: start again, walking by date
        return _walk_sql(f, sort, page, p, columns=columns)
    if one is not None and not joined:
        # one actor or source and nothing else that reads the entry: its links in index order
        # joined to their entries, a plain nested loop that stops with the page. The IN (…
        # LATERAL …) form below cost PostgreSQL 1.0 ms of planning and 0.6 ms of running for
        # an actor's 30 days at 1M entries against 0.37 and 0.17 for this one, and under a
        # generic plan 9 ms against 0.14. With a condition on the entry, the planner chose
        # hash joins for this form (actor + q: 3.4 -> 37 ms), so those keep the form below.
        return (
            f"SELECT {columns} FROM {link} l JOIN entries e ON e.id = l.entry_id"
            f" WHERE {' AND '.join([f'l.{link_col} = {one}', *inner[1:]])}"
            f" ORDER BY l.published_at {direction}, l.entry_id {direction} LIMIT {limit}"
        )
    join = " JOIN entries e ON e.id = l.entry_id" if joined else ""
    return (
        f"SELECT {columns} FROM entries e WHERE e.id IN ("
        f"SELECT x.entry_id FROM {driving} CROSS JOIN LATERAL ("
        f"SELECT l.entry_id FROM {link} l{join}"
        f" WHERE {' AND '.join(inner)}"
        f" ORDER BY l.published_at {direction}, l.entry_id {direction} LIMIT {limit}) x)"
        f" ORDER BY e.published_at {direction}, e.id {direction} LIMIT {limit}"
    )


async def locations_under(conn: asyncpg.Connection, f: EntryFilter) -> int | None:
    """How many locations the (resolved) location filter spans (None without one)."""
    if not f.location:
        return None
    return int(await conn.fetchval(query("count_locations_under"), list(f.location)))


async def bbox_locations(conn: asyncpg.Connection, f: EntryFilter) -> int | None:
    """How many locations lie in the filter's box (None without one): none means no entry can match."""
    if f.bbox is None:
        return None
    p = Params()
    return int(await conn.fetchval(f"SELECT count(*) FROM locations bl WHERE {box(f.bbox, p)}", *p.values))


def driving_is_small(n: int | None) -> bool:
    return n is not None and n <= _MAX_DRIVING_IDS


def driving_is_narrow(n: int | None) -> bool:
    return n is not None and n <= _MAX_JOINED_DRIVING_IDS


async def rarest_actor_first(conn: asyncpg.Connection, f: EntryFilter) -> EntryFilter:
    """With actor_match=all the first actor drives the list: make it the one fewest entries link."""
    if f.actor_match != "all" or len(f.actor) < 2:
        return f
    counts = {r["actor_id"]: r["entry_count"] for r in await conn.fetch(query("actor_counts"), list(f.actor))}
    return msgspec.structs.replace(f, actor=tuple(sorted(f.actor, key=lambda a: (counts.get(a, 0), a))))


def count_entries_sql(f: EntryFilter) -> tuple[str, list[Any]]:
    p = Params()
    return f"SELECT count(*) FROM entries e WHERE {where(f, p)}", p.values


def matches_sql(f: EntryFilter) -> tuple[str, list[Any]]:
    """Which of the entry ids in $1 match the filter."""
    p = Params(None)
    return f"SELECT e.id FROM entries e WHERE e.id = ANY($1::bigint[]) AND {where(f, p)}", p.values[1:]


def timeline_sql(f: EntryFilter, interval: Literal["hour", "day"]) -> tuple[str, list[Any]]:
    p = Params()
    unit = p.add(interval)
    sql = (
        f"SELECT date_trunc({unit}::text, e.published_at, 'UTC') AS start, count(*) AS count"
        f" FROM entries e WHERE {where(f, p)} GROUP BY 1 ORDER BY 1"
    )
    return sql, p.values


async def entry_matches(conn: asyncpg.Connection, f: EntryFilter, entry_ids: list[int]) -> set[int]:
    """The ids among `entry_ids` whose entries match `f` now (for streams and subscriptions)."""
    if not entry_ids:
        return set()
    resolved = await resolve_entry_filter(conn, f)
    sql, values = matches_sql(resolved)
    return {r["id"] for r in await conn.fetch(sql, entry_ids, *values)}


@asynccontextmanager
async def read_snapshot(conn: asyncpg.Connection, *, custom_plan: bool = False) -> AsyncIterator[None]:
    """One consistent view for a page, its total and its relations (read-only, repeatable read).

    `custom_plan`: plan this transaction's statements for their actual values. Inside a
    caller's transaction the caller's isolation stands.
    """
    custom_plan = custom_plan and not plans_custom(conn)  # its session plans every statement so already
    if conn.is_in_transaction():
        if custom_plan:
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        yield
        return
    begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    if custom_plan:
        # in BEGIN's simple-protocol message, not a round trip of its own (a q=drone page went
        # from 2.7-3.0 to 1.9-2.3 ms)
        begin += "; SET LOCAL plan_cache_mode = force_custom_plan"
    await conn.execute(begin)
    try:
        yield
    except BaseException:
        with suppress(Exception):  # a lost connection: the pool rolls back or drops it
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
