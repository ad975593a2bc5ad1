"""Filter inputs: each maps itself into the one filter the query layer knows (db/filters.py)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from db import filters
from schema.errors import BadInput
from schema.relay import to_refs
from schema.types import ActorKind, BlogStatus, EntryKind, LocationKind, SourceKind


@strawberry.enum
class ActorMatch(Enum):
    ANY = "any"
    ALL = "all"


@strawberry.input(name="BBox", description="A box in degrees; minLon > maxLon crosses the 180th meridian.")
class BBoxInput:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def to_bbox(self, argument: str) -> filters.BBox:
        lons, lats = (self.min_lon, self.max_lon), (self.min_lat, self.max_lat)
        if not all(-180 <= v <= 180 for v in lons) or not all(-90 <= v <= 90 for v in lats):
            raise BadInput(f"{argument}: longitudes lie in [-180, 180] and latitudes in [-90, 90]", field=argument)
        if self.min_lat > self.max_lat:
            raise BadInput(f"{argument}: minLat is above maxLat", field=argument)
        return (self.min_lon, self.min_lat, self.max_lon, self.max_lat)


@strawberry.input(
    name="EntryFilter",
    description="Every field narrows; the values of a list field are OR'ed. "
    "blog, actor, location and source take global ids, database ids or slugs.",
)
class EntryFilterInput:
    blog: list[str] | None = None
    actor: list[str] | None = None
    actor_match: ActorMatch = ActorMatch.ANY
    location: list[str] | None = strawberry.field(
        default=None, description="Also matches every place inside these locations."
    )
    source: list[str] | None = None
    published_after: datetime | None = strawberry.field(default=None, description="published at or after")
    published_before: datetime | None = strawberry.field(default=None, description="published strictly before")
    updated_after: datetime | None = strawberry.field(default=None, description="updated at or after")
    search: str | None = strawberry.field(
        default=None, description="Full text over headline and body, web-search syntax."
    )
    kind: list[EntryKind] | None = None
    bbox: BBoxInput | None = strawberry.field(default=None, description="Linked to a location inside the box.")
    and_: list[EntryFilterInput] | None = strawberry.field(name="and", default=None)
    or_: list[EntryFilterInput] | None = strawberry.field(name="or", default=None)
    not_: EntryFilterInput | None = strawberry.field(name="not", default=None)

    def to_filter(self) -> filters.EntryFilter:
        return filters.EntryFilter(
            blog=to_refs("Blog", self.blog, "blog"),
            actor=to_refs("Actor", self.actor, "actor"),
            actor_match=self.actor_match.value,
            location=to_refs("Location", self.location, "location"),
            source=to_refs("Source", self.source, "source"),
            since=self.published_after,
            until=self.published_before,
            updated_since=self.updated_after,
            q=self.search,
            kind=tuple(k.value for k in self.kind or ()),
            bbox=self.bbox.to_bbox("bbox") if self.bbox else None,
            and_=tuple(f.to_filter() for f in self.and_ or ()),
            or_=tuple(f.to_filter() for f in self.or_ or ()),
            not_=self.not_.to_filter() if self.not_ else None,
        )


def entry_filter(given: EntryFilterInput | None) -> filters.EntryFilter:
    return given.to_filter() if given is not None else filters.EntryFilter()


@strawberry.input(name="ActorFilter")
class ActorFilterInput:
    search: str | None = strawberry.field(default=None, description="Name or alias prefix, any case.")
    kind: list[ActorKind] | None = None
    country: list[str] | None = None

    def to_filter(self) -> filters.ActorFilter:
        return filters.ActorFilter(
            q=self.search, kind=tuple(k.value for k in self.kind or ()), country=tuple(self.country or ())
        )


@strawberry.input(name="Near")
class NearInput:
    latitude: float
    longitude: float
    radius_km: float

    def check(self, argument: str) -> tuple[float, float]:
        """The point, once it and the radius are checked as REST checks `near` and `radius_km`."""
        if not (-90 <= self.latitude <= 90 and -180 <= self.longitude <= 180):
            raise BadInput(f"{argument}: latitude lies in [-90, 90] and longitude in [-180, 180]", field=argument)
        if not 0.001 <= self.radius_km <= 20_038:
            raise BadInput(f"{argument}: radiusKm lies in [0.001, 20038]", field=argument)
        return (self.latitude, self.longitude)


@strawberry.input(name="LocationFilter")
class LocationFilterInput:
    search: str | None = None
    kind: list[LocationKind] | None = None
    country: list[str] | None = None
    within: list[str] | None = strawberry.field(default=None, description="Inside these locations (not themselves).")
    bbox: BBoxInput | None = None
    near: NearInput | None = None

    def to_filter(self) -> filters.LocationFilter:
        near = self.near
        return filters.LocationFilter(
            q=self.search,
            kind=tuple(k.value for k in self.kind or ()),
            country=tuple(self.country or ()),
            within=to_refs("Location", self.within, "within"),
            bbox=self.bbox.to_bbox("bbox") if self.bbox else None,
            near=near.check("near") if near else None,
            radius_km=near.radius_km if near else None,
        )


@strawberry.input(name="SourceFilter")
class SourceFilterInput:
    search: str | None = None
    kind: list[SourceKind] | None = None

    def to_filter(self) -> filters.SourceFilter:
        return filters.SourceFilter(q=self.search, kind=tuple(k.value for k in self.kind or ()))


@strawberry.input(name="BlogFilter")
class BlogFilterInput:
    status: list[BlogStatus] | None = None
    search: str | None = None

    def to_filter(self) -> filters.BlogFilter:
        return filters.BlogFilter(status=tuple(s.value for s in self.status or ()), q=self.search)
