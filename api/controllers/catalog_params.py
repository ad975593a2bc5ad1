"""Parameter declarations (descriptions and examples for /docs) shared by the catalog routes."""

from __future__ import annotations

from typing import Annotated

from litestar.openapi.spec import Example
from litestar.params import PathParameter

from api.params import describe

RefPath = Annotated[
    str,
    PathParameter(
        description="The id (digits) or the slug.", examples=[Example(value="dmitry-peskov"), Example(value="42")]
    ),
]
NameQ = Annotated[str | None, describe("Name or alias prefix, case-insensitive, any script.", "pesk", max_length=200)]
CountryParam = Annotated[list[str] | None, describe("ISO 3166-1 alpha-2 country code; repeat to OR.", ["RU"])]
ActorKindParam = Annotated[
    list[str] | None, describe("person, organization, state or military; repeat to OR.", ["person"])
]
SourceKindParam = Annotated[
    list[str] | None, describe("agency, social, official, broadcaster, ngo or newspaper; repeat to OR.", ["agency"])
]
LocationKindParam = Annotated[
    list[str] | None, describe("country, region, city, site or water; repeat to OR.", ["city"])
]
WithinParam = Annotated[
    list[str] | None, describe("Id or slug of an ancestor: locations strictly inside it. Repeat to OR.", ["crimea"])
]
LocationBBoxParam = Annotated[
    str | None, describe("min_lon,min_lat,max_lon,max_lat: locations inside the box.", "32.0,44.0,36.7,46.3")
]
NearParam = Annotated[
    str | None, describe("lat,lon: with radius_km, locations within that great-circle distance.", "44.6,33.5")
]
RadiusParam = Annotated[str | None, describe("Kilometres around `near` (required with it).", "50")]
BlogStatusParam = Annotated[list[str] | None, describe("live or closed; repeat to OR.", ["live"])]
BlogQParam = Annotated[str | None, describe("Words of the title (web-search syntax).", "crimea bridge", max_length=200)]
IntervalParam = Annotated[
    str | None, describe("Bucket size: hour or day (default), in UTC.", "hour", enum=["hour", "day"])
]
