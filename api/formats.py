"""Response formats for lists: JSON (default), NDJSON, CSV, GeoJSON, chosen by `format=` or Accept.

- `negotiate` picks the format: `format=` wins over `Accept`; an Accept that allows none of
  ours is a 406 problem naming what we offer; a bad `format=` value is a 400 naming `format`.
- NDJSON streams the *whole* result (no page limit): `export_entries` reads it through a
  server-side cursor in chunks (db/export.py) and hands Litestar a `Stream`, so memory stays
  flat however many rows match; a client that goes away stops the query.
- CSV and GeoJSON render one page, like JSON, and keep its `Link: rel="next"` header, so a
  script follows cursors the same way in every format; with `all=true` they stream the whole
  result as NDJSON does (`export_entries`, one export slot).
- CSV cells holding text from the data (headlines, bodies, names, aliases, descriptions…) that
  a spreadsheet would run as a formula, those starting with `=`, `+`, `-`, `@`, a tab or a
  carriage return, get a leading `'` (OWASP's advice against CSV injection). Numbers and
  timestamps we write ourselves (ids, counts, coordinates such as -33.5) are left as they are.
- Single-object routes (`/v1/blogs/{ref}`, `/v1/entries/{id}` …) answer JSON only, and say so
  as the lists do: `single_object(request)` refuses any other `format=` (400 naming `format`)
  and an Accept that allows no JSON (406), instead of ignoring them.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, cast

import anyio
import asyncpg
import msgspec
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.response import Response, Stream

from api.exports import Ticket
from db import export, where
from db.errors import InvalidInput
from db.filters import MAX_LIMIT, EntryFilter, EntrySort
from db.page import Page, Paged
from db.rows import Entry


class Format(enum.Enum):
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"
    GEOJSON = "geojson"


MEDIA_TYPES: dict[Format, str] = {
    Format.JSON: "application/json",
    Format.NDJSON: "application/x-ndjson",
    Format.CSV: "text/csv",
    Format.GEOJSON: "application/geo+json",
}
# the lists that offer formats beyond JSON, by operationId (the OpenAPI document lists them)
CATALOG_FORMATS = (Format.JSON, Format.NDJSON, Format.CSV)
POINT_FORMATS = (Format.JSON, Format.NDJSON, Format.CSV, Format.GEOJSON)
SINGLE_FORMATS = (Format.JSON,)
FORMATS_BY_OPERATION: dict[str, tuple[Format, ...]] = {
    "listEntries": POINT_FORMATS,
    "listBlogs": CATALOG_FORMATS,
    "listActors": CATALOG_FORMATS,
    "listSources": CATALOG_FORMATS,
    "listLocations": POINT_FORMATS,
    "getEntry": SINGLE_FORMATS,
    "getBlog": SINGLE_FORMATS,
    "getActor": SINGLE_FORMATS,
    "getSource": SINGLE_FORMATS,
    "getLocation": SINGLE_FORMATS,
    "getTimeline": SINGLE_FORMATS,
    "listChanges": SINGLE_FORMATS,
    "getUsage": SINGLE_FORMATS,
    "getKey": SINGLE_FORMATS,
}
# what a list answers in each format's Content-Type (Litestar adds "; charset=utf-8" to text/*)
CONTENT_TYPES: dict[Format, str] = {**MEDIA_TYPES, Format.CSV: "text/csv; header=present"}


class NotAcceptable(HTTPException):
    """406: the Accept header allows none of the formats this route offers."""

    status_code = 406


def negotiate(accept: str | None, format: str | None, offered: Sequence[Format] = tuple(Format)) -> Format:
    """The format to answer in: `format=` if given, else the best of `offered` under `Accept`."""
    if format is not None:
        try:
            chosen = Format(format.lower())
        except ValueError:
            chosen = None
        if chosen is None or chosen not in offered:
            names = ", ".join(f.value for f in offered)
            raise InvalidInput(f"format must be one of {names}, not {format!r}", field="format")
        return chosen
    if accept is None or not accept.strip():
        return offered[0]
    ranges = _parse_accept(accept)
    best: tuple[float, int, int] | None = None
    chosen = None
    for fmt in offered:
        match = _best_range(MEDIA_TYPES[fmt], ranges)
        if match is None or match[0] <= 0:
            continue
        if best is None or match > best:
            best, chosen = match, fmt
    if chosen is None:
        offers = ", ".join(MEDIA_TYPES[f] for f in offered)
        raise NotAcceptable(detail=f"this route can answer {offers} (or use format=); the Accept header allows none")
    return chosen


def single_object(request: Request[Any, Any, Any]) -> None:
    """For a route answering one object, JSON only: refuse another `format=` (400) or an Accept without JSON (406)."""
    negotiate(request.headers.get("accept"), request.query_params.get("format"), SINGLE_FORMATS)


def _parse_accept(accept: str) -> list[tuple[str, str, float]]:
    """(type, subtype, q) for each media range, in the client's order; unparsable ranges are skipped."""
    out = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if "/" not in media:
            continue
        kind, _, sub = media.lower().partition("/")
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        out.append((kind.strip(), sub.strip(), q))
    return out


def _best_range(media_type: str, ranges: list[tuple[str, str, float]]) -> tuple[float, int, int] | None:
    """(q, specificity, -position) of the most specific range matching `media_type`, if any."""
    kind, _, sub = media_type.partition("/")
    found: tuple[int, float, int] | None = None
    for position, (rk, rs, q) in enumerate(ranges):
        if (rk, rs) == (kind, sub):
            specificity = 2
        elif (rk, rs) == (kind, "*"):
            specificity = 1
        elif (rk, rs) == ("*", "*"):
            specificity = 0
        else:
            continue
        if found is None or specificity > found[0]:
            found = (specificity, q, -position)
    if found is None:
        return None
    specificity, q, neg_position = found
    return (q, specificity, neg_position)


# ---------------------------------------------------------------- entries

ENTRY_CSV_COLUMNS = (
    "id",
    "blog",
    "published_at",
    "updated_at",
    "kind",
    "headline",
    "body",
    "actors",
    "speakers",
    "locations",
    "sources",
)


def _timestamp(value: datetime | date) -> str:
    """The same RFC 3339 text the JSON answers carry ("2023-09-13T19:33:00Z")."""
    return msgspec.json.encode(value).decode()[1:-1]


# what a spreadsheet reads as the start of a formula (OWASP, "CSV Injection")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    """Text from the data as a CSV cell a spreadsheet shows rather than runs: `'=1+1` for `=1+1`."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _csv_row(e: Entry) -> list[str | int]:
    return [
        e.id,
        text_cell(e.blog.slug),
        _timestamp(e.published_at),
        _timestamp(e.updated_at),
        text_cell(e.kind),
        text_cell(e.headline),
        text_cell("\n\n".join(e.body)),
        text_cell(";".join(a.actor.slug for a in e.actors)),
        text_cell(";".join(a.actor.slug for a in e.actors if a.role == "speaker")),
        text_cell(";".join(loc.slug for loc in e.locations)),
        text_cell(";".join(s.slug for s in e.sources)),
    ]


def entries_csv(entries: Iterable[Entry], *, header: bool = True) -> bytes:
    """RFC 4180 CSV: a header row, then one row an entry; linked slugs joined with `;`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(ENTRY_CSV_COLUMNS)
    writer.writerows(_csv_row(e) for e in entries)
    return out.getvalue().encode()


class _Point(msgspec.Struct):
    coordinates: tuple[float, float]  # lon, lat (RFC 7946 §3.1.1)
    type: str = "Point"


class _Feature(msgspec.Struct):
    id: str
    geometry: _Point
    properties: dict[str, Any]
    type: str = "Feature"


def entry_features(entries: Iterable[Entry]) -> list[_Feature]:
    """One feature per entry and location it names, at the location's point."""
    features = []
    for e in entries:
        common = {
            "entry_id": e.id,
            "blog": e.blog.slug,
            "published_at": e.published_at,
            "updated_at": e.updated_at,
            "kind": e.kind,
            "headline": e.headline,
            "actors": [a.actor.slug for a in e.actors],
            "sources": [s.slug for s in e.sources],
        }
        for loc in e.locations:
            properties = {
                **common,
                "location": loc.slug,
                "location_id": loc.id,
                "location_name": loc.name,
                "location_kind": loc.kind,
            }
            features.append(
                _Feature(id=f"{e.id}-{loc.id}", geometry=_Point((loc.longitude, loc.latitude)), properties=properties)
            )
    return features


def entries_geojson(entries: Iterable[Entry], page: Any = None) -> bytes:
    """An RFC 7946 FeatureCollection; the list's `page` rides along as a foreign member."""
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": entry_features(entries)}
    if page is not None:
        collection["page"] = page
    return msgspec.json.encode(collection)


def entries_page_response(
    fmt: Format, entries: Sequence[Entry], page: Any, headers: dict[str, str] | None = None
) -> Response[bytes]:
    """One page of entries as CSV or GeoJSON (JSON pages are the controller's own model)."""
    if fmt is Format.CSV:
        body = entries_csv(entries)
    elif fmt is Format.GEOJSON:
        body = entries_geojson(entries, page)
    else:
        raise ValueError(f"{fmt} is not a page format")
    return Response(body, media_type=CONTENT_TYPES[fmt], headers=headers or {})


_ndjson = msgspec.json.Encoder()


class _Chunks:
    """How a whole-result export writes its chunks of entries: what comes first, each chunk, the end."""

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        self.features = 0  # GeoJSON: features written so far (the next one after a comma)

    def head(self) -> bytes:
        if self.fmt is Format.CSV:
            return entries_csv((), header=True)
        if self.fmt is Format.GEOJSON:
            return b'{"type":"FeatureCollection","features":['
        return b""

    def chunk(self, entries: list[Entry]) -> bytes:
        if self.fmt is Format.CSV:
            return entries_csv(entries, header=False)
        if self.fmt is Format.GEOJSON:
            features = entry_features(entries)
            if not features:
                return b""
            body = b",".join(_ndjson.encode(f) for f in features)
            body = body if self.features == 0 else b"," + body
            self.features += len(features)
            return body
        return _ndjson.encode_lines(entries)

    def tail(self) -> bytes:
        return b"]}" if self.fmt is Format.GEOJSON else b""


async def export_entries(
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
    filter: EntryFilter,
    sort: EntrySort = "-published_at",
    ticket: Ticket | None = None,
    fmt: Format = Format.NDJSON,
) -> Stream:
    """Every matching entry, streamed from a server-side cursor: NDJSON (one object a line), CSV
    (the header, then one row an entry) or GeoJSON (one FeatureCollection, its features written
    as they are read).

    The filter's references are checked on the request's connection `conn` before the
    response starts, so an unknown slug is still a 404 problem rather than a broken stream;
    the rows are then read on a connection of their own from `pool` (the exports' own pool,
    api/exports.py), held only while the stream runs (a client that goes away ends it). The
    export's `ticket` is released when the stream ends, however it ends.
    """
    try:
        await where.resolve_entry_filter(conn, filter)
    except BaseException:
        if ticket is not None:
            ticket.release()
        raise
    writer = _Chunks(fmt)

    async def lines() -> AsyncIterator[bytes]:
        try:
            async with pool.acquire() as proxy:
                chunks = export.iter_entries(cast(asyncpg.Connection, proxy), filter, sort)
                try:
                    head = writer.head()
                    if head:
                        yield head
                    async for chunk in chunks:
                        body = writer.chunk(chunk)
                        if body:
                            yield body
                        if ticket is not None:
                            await ticket.give_way()
                    tail = writer.tail()
                    if tail:
                        yield tail
                finally:
                    # A client that hangs up cancels the stream mid-export: end the export's snapshot
                    # transaction here, shielded from that cancellation (a cancelled ROLLBACK would
                    # leave the pool a connection still in a transaction).
                    with anyio.CancelScope(shield=True):
                        await chunks.aclose()
                        if proxy.is_in_transaction():
                            await proxy.execute("ROLLBACK")
        finally:
            if ticket is not None:
                ticket.release()

    body = lines()
    if ticket is not None:
        ticket.bind(body)
    return Stream(body, media_type=CONTENT_TYPES[fmt])


# ---------------------------------------------------------------- the other lists
#
# Blogs, actors, locations and sources: CSV of a page (one column per field; lists joined
# with `;`, a nested reference by its slug), NDJSON of the whole list by walking its pages
# server-side (catalogues are small; each page is a query of its own), and for locations a
# GeoJSON feature per location.

PageFetch = Callable[[asyncpg.Connection, Page], Awaitable[Paged[Any]]]


def _cell(value: Any) -> str | int | float:
    """A field as a CSV cell: numbers and timestamps as they are, anything textual through text_cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        return text_cell(value)
    if isinstance(value, datetime | date):
        return _timestamp(value)
    if isinstance(value, msgspec.Struct):
        return text_cell(str(getattr(value, "slug", getattr(value, "id", ""))))
    if isinstance(value, list | tuple):
        return text_cell(";".join(str(_cell(v)) for v in value))
    return text_cell(msgspec.json.encode(value).decode())


def records_csv(cls: type[msgspec.Struct], rows: Iterable[msgspec.Struct]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(cls.__struct_fields__)
    writer.writerows([_cell(getattr(row, name)) for name in cls.__struct_fields__] for row in rows)
    return out.getvalue().encode()


def location_features(rows: Iterable[Any]) -> list[_Feature]:
    features = []
    for row in rows:
        properties = {k: v for k, v in msgspec.structs.asdict(row).items() if k not in ("latitude", "longitude")}
        features.append(_Feature(id=str(row.id), geometry=_Point((row.longitude, row.latitude)), properties=properties))
    return features


def page_response(
    fmt: Format, json_response: Response[Any], cls: type[msgspec.Struct], rows: Sequence[Any], page: Any
) -> Response[Any]:
    """A catalogue page in `fmt`: the JSON response as it is, or the page as CSV or GeoJSON."""
    if fmt is Format.JSON:
        return json_response
    headers = dict(json_response.headers)
    if fmt is Format.CSV:
        return Response(records_csv(cls, rows), media_type=CONTENT_TYPES[fmt], headers=headers)
    if fmt is Format.GEOJSON:
        collection = {"type": "FeatureCollection", "features": location_features(rows), "page": page}
        return Response(msgspec.json.encode(collection), media_type=CONTENT_TYPES[fmt], headers=headers)
    raise ValueError(f"{fmt} is not a page format")


async def ndjson_pages(conn: asyncpg.Connection, pool: asyncpg.Pool, fetch: PageFetch) -> Stream:
    """The whole list, one object a line, read page after page (keyset) as the client reads.

    The first page is read on the request's connection before the response starts, so a bad
    filter is still a problem response.
    """
    first = await fetch(conn, Page(limit=MAX_LIMIT))

    async def lines() -> AsyncIterator[bytes]:
        found = first
        while True:
            if found.rows:
                yield _ndjson.encode_lines(found.rows)
            if not found.has_next:
                return
            async with pool.acquire() as proxy:
                found = await fetch(cast(asyncpg.Connection, proxy), Page(limit=MAX_LIMIT, after=found.next_key))

    return Stream(lines(), media_type=CONTENT_TYPES[Format.NDJSON])
