"""Query parameters → the shared filters (db.filters) and a page, with every mistake named.

`Query(request)` refuses parameters the route does not declare, then each reader method
parses one parameter and records what is wrong with it instead of stopping at the first
problem; `done()` raises one ParamError naming them all (a 400 via api.errors).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal, TypeVar, cast

import msgspec
from litestar import Request
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Example
from litestar.params import CookieParameter, HeaderParameter, ParameterKwarg, PathParameter, QueryParameter

from api.errors import ParamError
from db.errors import InvalidInput
from db.filters import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_SEARCH,
    ActorFilter,
    BBox,
    BlogFilter,
    CatalogSort,
    EntryFilter,
    EntrySort,
    LocationFilter,
    Ref,
    SourceFilter,
    check_text,
    parse_id,
    parse_ref,
)
from db.page import Cursors, Page

S = TypeVar("S", bound=str)

# accepted on every route: the response format (api/formats.py) and nothing else
GLOBAL_PARAMS = frozenset({"format"})
MAX_VALUES = 50  # repeats of one parameter
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")

ENTRY_KINDS = ("post", "video", "interactive", "read_more")
ACTOR_KINDS = ("person", "organization", "state", "military")
LOCATION_KINDS = ("country", "region", "city", "site", "water")
SOURCE_KINDS = ("agency", "social", "official", "broadcaster", "ngo", "newspaper")
ENTRY_SORTS: tuple[EntrySort, ...] = ("-published_at", "published_at", "-updated_at", "updated_at")


@cache
def declared(handler: HTTPRouteHandler) -> frozenset[str]:
    """The query parameter names a handler declares (its signature's QueryParameter fields)."""
    names = set(GLOBAL_PARAMS)
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if (
            isinstance(kwarg, ParameterKwarg)
            and not isinstance(kwarg, PathParameter | HeaderParameter | CookieParameter)
            and not (kwarg.header or kwarg.cookie)
        ):
            names.add(kwarg.query or name)
    return frozenset(names)


class Query:
    def __init__(self, request: Request[Any, Any, Any], *, extra: frozenset[str] = frozenset()) -> None:
        self.raw = request.query_params
        self.errors: list[tuple[str, str]] = []
        allowed = declared(request.route_handler) | extra
        for name in sorted(set(self.raw.keys()) - allowed):
            self.errors.append((name, f"unknown parameter; this endpoint takes {', '.join(sorted(allowed))}"))

    def fail(self, name: str, reason: str) -> None:
        self.errors.append((name, reason))

    def done(self) -> None:
        if self.errors:
            raise ParamError(self.errors)

    # ------------------------------------------------------------ raw access

    def many(self, name: str) -> list[str]:
        values = [v for v in self.raw.getall(name, []) if v != ""]
        if len(values) > MAX_VALUES:
            self.fail(name, f"at most {MAX_VALUES} values")
            return values[:MAX_VALUES]
        return values

    def one(self, name: str) -> str | None:
        values = self.raw.getall(name, [])
        if len(values) > 1:
            self.fail(name, "give this parameter once")
        return values[0] if values else None

    # ------------------------------------------------------------ typed readers

    def refs(self, name: str) -> tuple[Ref, ...]:
        out: list[Ref] = []
        for value in self.many(name):
            ref = parse_ref(value)
            if ref is not None:
                out.append(ref)
            else:
                self.fail(
                    name, f"{value!r} is neither an id nor a slug (lowercase a-z, 0-9, '-', starting with a letter)"
                )
        return tuple(out)

    def choice(self, name: str, options: tuple[S, ...], default: S) -> S:
        value = self.one(name)
        if value is None:
            return default
        if value == "":  # `sort=` is a mistake to name, not a request for the default
            self.fail(name, f"must not be empty; one of {', '.join(options)}, or leave it out")
            return default
        if value not in options:
            self.fail(name, f"{value!r} is not one of {', '.join(options)}")
            return default
        return value  # one of options, checked above

    def choices(self, name: str, options: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for value in self.many(name):
            if value in options:
                out.append(value)
            else:
                self.fail(name, f"{value!r} is not one of {', '.join(options)}")
        return tuple(dict.fromkeys(out))

    def text(self, name: str, max_length: int = MAX_SEARCH) -> str | None:
        value = self.one(name)
        if value is None:
            return None
        value = value.strip()
        if not value:
            self.fail(name, "must not be empty")
            return None
        try:
            check_text(value, name, max_length)
        except InvalidInput as exc:
            self.fail(name, exc.detail)
            return None
        return value

    def when(self, name: str) -> datetime | None:
        value = self.one(name)
        if value is None:
            return None
        if not _RFC3339.match(value):
            self.fail(name, f"{value!r} is not an RFC 3339 date-time with an offset, e.g. 2023-09-13T06:00:00Z")
            return None
        try:
            return datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
        except ValueError as exc:
            self.fail(name, f"{value!r} is not a valid date-time ({exc})")
            return None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.one(name)
        if value is None or value == "":
            return default
        n = parse_id(value)
        if n is None:
            self.fail(name, f"{value!r} is not an integer from {low} to {high} (ASCII digits)")
            return default
        if not low <= n <= high:
            self.fail(name, f"must be between {low} and {high}")
            return default
        return n

    def number(self, name: str, low: float, high: float) -> float | None:
        value = self.one(name)
        if value is None:
            return None
        try:
            x = float(value)
        except ValueError:
            self.fail(name, f"{value!r} is not a number")
            return None
        if not math.isfinite(x) or not low <= x <= high:
            self.fail(name, f"must be between {low:g} and {high:g}")
            return None
        return x

    def flag(self, name: str) -> bool:
        value = self.one(name)
        if value is None:
            return False
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        self.fail(name, f"{value!r} is not true or false")
        return False

    def floats(self, name: str, n: int) -> list[float] | None:
        value = self.one(name)
        if value is None:
            return None
        try:
            parts = [float(p) for p in value.split(",")]
        except ValueError:
            parts = []
        if len(parts) != n or not all(math.isfinite(p) for p in parts):
            return None
        return parts

    def bbox(self, name: str = "bbox") -> BBox | None:
        if self.one(name) is None:
            return None
        parts = self.floats(name, 4)
        reason = "expected min_lon,min_lat,max_lon,max_lat (four numbers), e.g. 32.0,44.0,36.0,46.5"
        if parts is None:
            self.fail(name, reason)
            return None
        min_lon, min_lat, max_lon, max_lat = parts
        if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
            self.fail(name, "longitudes must lie in -180..180 and latitudes in -90..90 with min_lat <= max_lat")
            return None
        return (min_lon, min_lat, max_lon, max_lat)

    def point(self, name: str) -> tuple[float, float] | None:
        if self.one(name) is None:
            return None
        parts = self.floats(name, 2)
        if parts is None or not (-90 <= parts[0] <= 90 and -180 <= parts[1] <= 180):
            self.fail(name, "expected lat,lon (latitude -90..90, longitude -180..180), e.g. 44.6,33.5")
            return None
        return (parts[0], parts[1])

    def countries(self, name: str = "country") -> tuple[str, ...]:
        out = []
        for value in self.many(name):
            if _COUNTRY.match(value):
                out.append(value.upper())
            else:
                self.fail(name, f"{value!r} is not an ISO 3166-1 alpha-2 code, e.g. UA")
        return tuple(out)

    def page(
        self, cursors: Cursors, *, sort: str, filter: msgspec.Struct | None, value_type: type, id_type: type = int
    ) -> Page:
        limit = self.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        count = self.flag("count")
        token = self.one("cursor")
        after = None
        if token is not None:
            try:
                after = cursors.decode(token, sort=sort, filter=filter, value_type=value_type, id_type=id_type)
            except InvalidInput as exc:
                self.fail("cursor", exc.detail)
        return Page(limit=limit, after=after, count=count)

    # ------------------------------------------------------------ whole filters

    def entry_filter(self) -> EntryFilter:
        actor_match = self.choice("actor_match", ("any", "all"), "any")
        since, until = self.when("since"), self.when("until")
        if since and until and since > until:
            self.fail("until", "must not be earlier than since")
        return EntryFilter(
            blog=self.refs("blog"),
            actor=self.refs("actor"),
            actor_match=cast(Literal["any", "all"], actor_match),
            location=self.refs("location"),
            source=self.refs("source"),
            since=since,
            until=until,
            updated_since=self.when("updated_since"),
            q=self.text("q"),
            kind=self.choices("kind", ENTRY_KINDS),
            bbox=self.bbox(),
        )

    def entry_sort(self) -> EntrySort:
        return self.choice("sort", ENTRY_SORTS, "-published_at")

    def catalog_sort(self) -> CatalogSort:
        return self.choice("sort", ("name", "-entry_count"), "name")

    def blog_filter(self) -> BlogFilter:
        return BlogFilter(status=self.choices("status", ("live", "closed")), q=self.text("q"))

    def interval(self) -> Literal["hour", "day"]:
        return self.choice("interval", ("hour", "day"), "day")

    def actor_filter(self) -> ActorFilter:
        return ActorFilter(q=self.text("q"), kind=self.choices("kind", ACTOR_KINDS), country=self.countries())

    def location_filter(self) -> LocationFilter:
        near = self.point("near")
        radius = self.number("radius_km", 0.001, 20_038)
        if (near is None) != (radius is None) and not any(n in ("near", "radius_km") for n, _ in self.errors):
            self.fail("radius_km" if near else "near", "near and radius_km go together")
        return LocationFilter(
            q=self.text("q"),
            kind=self.choices("kind", LOCATION_KINDS),
            country=self.countries(),
            within=self.refs("within"),
            bbox=self.bbox(),
            near=near,
            radius_km=radius,
        )

    def source_filter(self) -> SourceFilter:
        return SourceFilter(q=self.text("q"), kind=self.choices("kind", SOURCE_KINDS))


def path_ref(value: str) -> Ref:
    """A path's `{id or slug}`; anything that is neither is a 400 naming `id`."""
    ref = parse_ref(value)
    if ref is None:
        raise InvalidInput(f"id: {value[:40]!r} is neither an id (ASCII digits) nor a slug", field="id")
    return ref


# ---------------------------------------------------------------- declarations for the OpenAPI document
# Handlers declare these so that /docs lists every parameter with a description and an example;
# the values are read back through `Query`, which also refuses anything not declared.


def describe(description: str, example: Any, **kw: Any) -> QueryParameter:
    return QueryParameter(description=description, examples=[Example(value=example)], **kw)


BlogParam = Annotated[
    list[str] | None,
    describe("Blog id or slug; repeat the parameter to match any of several.", ["russia-ukraine-war-live-day-567"]),
]
ActorParam = Annotated[
    list[str] | None,
    describe(
        "Actor id or slug; repeat to match entries linking any of them (or all, with actor_match=all).",
        ["dmitry-peskov"],
    ),
]
ActorMatchParam = Annotated[
    str | None,
    describe(
        "`any` (default): an entry links at least one given actor; `all`: every given actor.",
        "all",
        enum=["any", "all"],
    ),
]
LocationParam = Annotated[
    list[str] | None,
    describe(
        "Location id or slug; matches the location and everything inside it (crimea matches sevastopol). Repeat to OR.",
        ["crimea"],
    ),
]
SourceParam = Annotated[list[str] | None, describe("Source id or slug; repeat to OR several.", ["tass"])]
SinceParam = Annotated[
    str | None,
    describe(
        "RFC 3339 date-time; entries published at or after it (since <= published_at).",
        "2023-09-13T06:00:00Z",
        format="date-time",
    ),
]
UntilParam = Annotated[
    str | None,
    describe(
        "RFC 3339 date-time; entries published strictly before it (published_at < until).",
        "2023-09-14T00:00:00Z",
        format="date-time",
    ),
]
UpdatedSinceParam = Annotated[
    str | None,
    describe(
        "RFC 3339 date-time; entries changed at or after it (updated_at >= updated_since), for incremental sync.",
        "2023-09-13T12:00:00Z",
        format="date-time",
    ),
]
EntryQParam = Annotated[
    str | None,
    describe(
        'Full-text search over headline and body, web-search syntax: "quoted phrase", or, -word.',
        'drone -"grain deal"',
        max_length=200,
    ),
]
EntryKindParam = Annotated[
    list[str] | None, describe("Entry kind; repeat to OR: post, video, interactive, read_more.", ["video"])
]
BBoxParam = Annotated[
    str | None,
    describe("min_lon,min_lat,max_lon,max_lat: entries linked to a location inside the box.", "32.0,44.0,36.7,46.3"),
]
EntrySortParam = Annotated[
    str | None,
    describe(
        "Order: -published_at (default, newest first), published_at, -updated_at, updated_at.",
        "-published_at",
        enum=list(ENTRY_SORTS),
    ),
]
CatalogSortParam = Annotated[
    str | None,
    describe(
        "Order: name (default, A to Z) or -entry_count (most linked first).",
        "-entry_count",
        enum=["name", "-entry_count"],
    ),
]
LimitParam = Annotated[
    int | None, describe(f"Rows per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).", 20, ge=1, le=MAX_LIMIT)
]
CursorParam = Annotated[
    str | None,
    describe(
        "Opaque cursor from a previous page's next_cursor; only valid with the same filters and sort.", "eyJ2IjoxfQ"
    ),
]
AllParam = Annotated[
    bool | None,
    describe(
        "true with format=csv or geojson: the whole result streamed, as NDJSON always is, instead of a page"
        " (one export; limit, cursor and count do not apply).",
        True,
    ),
]
CountParam = Annotated[
    bool | None, describe("true adds page.total, the number of matching rows (costs a count).", True)
]
