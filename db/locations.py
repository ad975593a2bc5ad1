"""Locations: filtered keyset lists and one location, each with its parent and ancestors.

`within` means strictly inside (descendants, via location_closure); `near` + `radius_km`
is a great-circle (haversine) distance computed in SQL, answered as `distance_km`.
"""

from __future__ import annotations

from collections import defaultdict

import asyncpg
import msgspec

from db import catalog, where
from db.errors import NotFound
from db.filters import CatalogSort, LocationFilter, Ref
from db.page import Page, Paged
from db.rows import Location, LocationRef, from_record
from db.sql import query
from db.where import Params

SOURCE = "locations l LEFT JOIN location_entry_counts n ON n.location_id = l.id"
COLUMNS = (
    "l.id, l.slug, l.name, l.kind, l.parent_id, l.latitude, l.longitude, l.aliases, l.country, l.description,"
    " l.created_at, l.updated_at, COALESCE(n.entry_count, 0) AS entry_count"
)
EARTH_RADIUS_KM = 6371.0088
_HAVERSINE = (
    "(2 * {r} * asin(sqrt(power(sin(radians(l.latitude - {lat}::float8) / 2), 2)"
    " + cos(radians({lat}::float8)) * cos(radians(l.latitude)) * power(sin(radians(l.longitude - {lon}::float8) / 2), 2))))"
)


def _distance(lat: str, lon: str) -> str:
    return _HAVERSINE.format(r=EARTH_RADIUS_KM, lat=lat, lon=lon)


async def conditions(conn: asyncpg.Connection, f: LocationFilter, p: Params) -> tuple[list[str], str]:
    """The filter's conditions and the distance column (NULL without `near`)."""
    c = []
    distance = "NULL::float8"
    if f.q:
        c.append(catalog.name_or_alias("l", p, f.q))
    if f.kind:
        c.append(f"l.kind = ANY({p.add(list(f.kind))}::text[])")
    if f.country:
        c.append(f"l.country = ANY({p.add(list(f.country))}::text[])")
    if f.within:
        try:
            ids = await where.resolve(conn, "location", f.within)
        except NotFound as exc:
            raise NotFound(exc.detail, field="within") from None
        c.append(
            "EXISTS (SELECT 1 FROM location_closure w WHERE w.location_id = l.id AND w.depth > 0"
            f" AND w.ancestor_id = ANY({p.add(list(ids.values()))}::bigint[]))"
        )
    if f.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = (p.add(float(v)) for v in f.bbox)
        c.append(f"l.latitude BETWEEN {min_lat}::float8 AND {max_lat}::float8")
        if f.bbox[0] <= f.bbox[2]:
            c.append(f"l.longitude BETWEEN {min_lon}::float8 AND {max_lon}::float8")
        else:  # the box crosses the antimeridian
            c.append(f"(l.longitude >= {min_lon}::float8 OR l.longitude <= {max_lon}::float8)")
    if f.near is not None and f.radius_km is not None:
        lat, lon = p.add(float(f.near[0])), p.add(float(f.near[1]))
        distance = _distance(lat, lon)
        c.append(f"{distance} <= {p.add(float(f.radius_km))}::float8")
    return c, distance


async def list_locations(
    conn: asyncpg.Connection, filter: LocationFilter, sort: CatalogSort = "name", page: Page | None = None
) -> Paged[Location]:
    p = Params()
    conds, distance = await conditions(conn, filter, p)
    found = await catalog.list_rows(
        conn,
        Location,
        table="l",
        source=SOURCE,
        columns=f"{COLUMNS}, {distance} AS distance_km",
        conds=conds,
        p=p,
        sort=sort,
        page=page or Page(),
    )
    found.rows = await with_ancestors(conn, found.rows)
    return found


async def count_locations(conn: asyncpg.Connection, filter: LocationFilter) -> int:
    p = Params()
    conds, _ = await conditions(conn, filter, p)
    return await catalog.count_rows(conn, source=SOURCE, conds=conds, values=p.values)


async def get_location(conn: asyncpg.Connection, ref: Ref) -> Location:
    sql = f"SELECT {COLUMNS} FROM {SOURCE} WHERE l.id = $1::bigint OR l.slug = $2::text"
    found: Location | None = await catalog.get_one(conn, Location, sql=sql, ref=ref)
    if found is None:
        raise NotFound(f"there is no location {ref!r}", field="id")
    (located,) = await with_ancestors(conn, [found])
    return located


async def ancestors_of(conn: asyncpg.Connection, location_ids: list[int]) -> dict[int, list[LocationRef]]:
    """Each location's ancestors, outermost first, in one query."""
    out: dict[int, list[LocationRef]] = defaultdict(list)
    if location_ids:
        for r in await conn.fetch(query("location_ancestors"), location_ids):
            out[r["location_id"]].append(from_record(LocationRef, r))
    return out


async def with_ancestors(conn: asyncpg.Connection, rows: list[Location]) -> list[Location]:
    ancestors = await ancestors_of(conn, [r.id for r in rows])
    return [
        msgspec.structs.replace(
            r, ancestors=ancestors.get(r.id, []), parent=ancestors[r.id][-1] if ancestors.get(r.id) else None
        )
        for r in rows
    ]
