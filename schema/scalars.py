"""The DateTime scalar written as REST writes times: RFC 3339 in UTC with `Z`.

Strawberry's own DateTime serializes with `isoformat()` (`…+00:00`); this one converts to UTC
and lets msgspec write it, the encoder every REST answer goes through, so a time reads the
same in both skins (`2023-09-13T19:33:00Z`, microseconds when there are any). Input is parsed
as before: any ISO 8601 time.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from strawberry.schema.types.base_scalars import DateTimeDefinition as _Default
from strawberry.types.scalar import ScalarDefinition


def rfc3339(value: dt.datetime) -> str:
    """A time as REST renders it; a naive time is taken to be UTC already."""
    utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    text: str = msgspec.to_builtins(utc)
    return text


def _serialize(value: object) -> str:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"DateTime cannot represent {value!r}")
    return rfc3339(value)


DateTimeDefinition = ScalarDefinition(
    name="DateTime",
    description="A moment, RFC 3339: answers are in UTC with `Z` (as REST writes them); input takes any offset",
    specified_by_url=None,
    serialize=_serialize,
    parse_value=_Default.parse_value,
    parse_literal=None,
    origin=dt.datetime,
)

SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {dt.datetime: DateTimeDefinition}
