"""GET /v1/locations and /v1/locations/{id or slug}: places, each with its parent and ancestors."""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Request, get
from litestar.response import Response

from api import formats
from api import params as p
from api.controllers import catalog_params as c
from api.controllers.entries import DEPENDENCIES, Conn
from api.controllers.listing import PageInfo, cursors, list_response, page_info
from db import locations
from db.rows import Location

TAGS = ["locations"]
KEY_TYPES: dict[str, type] = {"name": str, "-entry_count": int}


class LocationList(msgspec.Struct):
    data: list[Location]
    page: PageInfo


@get(
    "/v1/locations",
    operation_id="listLocations",
    tags=TAGS,
    dependencies=DEPENDENCIES,
    summary="List locations",
    description=(
        "Countries, regions, cities, sites and water bodies with coordinates, `parent` and `ancestors`"
        " (outermost first). With `near` and `radius_km`, each carries its `distance_km`."
    ),
)
async def list_locations(
    request: Request[Any, Any, Any],
    conn: Conn,
    q: c.NameQ = None,
    kind: c.LocationKindParam = None,
    country: c.CountryParam = None,
    within: c.WithinParam = None,
    bbox: c.LocationBBoxParam = None,
    near: c.NearParam = None,
    radius_km: c.RadiusParam = None,
    sort: p.CatalogSortParam = None,
    limit: p.LimitParam = None,
    cursor: p.CursorParam = None,
    count: p.CountParam = None,
) -> Response[LocationList]:
    query = p.Query(request)
    flt, order = query.location_filter(), query.catalog_sort()
    page = query.page(cursors(request), sort=order, filter=flt, value_type=KEY_TYPES[order])
    query.done()
    fmt = formats.negotiate(request.headers.get("accept"), request.query_params.get("format"), formats.POINT_FORMATS)
    if fmt is formats.Format.NDJSON:  # the whole list, streamed
        stream = await formats.ndjson_pages(
            conn, request.app.state.pool, lambda cn, pg: locations.list_locations(cn, flt, order, pg)
        )
        return cast(Response[LocationList], stream)
    found = await locations.list_locations(conn, flt, order, page)
    info = page_info(request, found, page.limit, sort=order, filter=flt)
    response = list_response(request, LocationList(data=found.rows, page=info), info)
    return formats.page_response(fmt, response, Location, found.rows, info)


@get(
    "/v1/locations/{ref:str}",
    operation_id="getLocation",
    tags=TAGS,
    dependencies=DEPENDENCIES,
    summary="One location by id or slug",
    description="With its parent and ancestors; 404 if no location has that id or slug.",
)
async def get_location(request: Request[Any, Any, Any], conn: Conn, ref: c.RefPath) -> Location:
    p.Query(request).done()
    formats.single_object(request)
    return await locations.get_location(conn, p.path_ref(ref))


route_handlers = [list_locations, get_location]
