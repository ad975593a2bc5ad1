"""Relay global ids ("Type:dbid" in base64, as Relay does) and references given to filters.

A filter reference may be a global id, a database id or a slug; `to_ref` turns each into the
`db.filters.Ref` the query layer takes (an int id or a slug).
"""

from __future__ import annotations

import base64
import binascii
import re

import msgspec

from db.filters import DEFAULT_LIMIT, Ref, parse_ref
from db.page import Cursors, Key, Page
from schema.errors import BadInput

TYPES = ("Blog", "Entry", "Actor", "Location", "Source")
_GLOBAL = re.compile(r"(Blog|Entry|Actor|Location|Source):([1-9][0-9]{0,17})")  # an id fits a bigint


def to_global_id(type_name: str, db_id: int) -> str:
    return base64.b64encode(f"{type_name}:{db_id}".encode()).decode()


def parse_global_id(value: str) -> tuple[str, int] | None:
    """(type name, database id) when `value` is one of our global ids, else None."""
    if len(value) % 4 or len(value) > 64:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    match = _GLOBAL.fullmatch(text)
    return (match[1], int(match[2])) if match else None


def from_global_id(value: str, argument: str = "id") -> tuple[str, int]:
    parsed = parse_global_id(value)
    if parsed is None:
        raise BadInput(f"{argument}: not a valid global id: {value!r}", field=argument)
    return parsed


def to_ref(type_name: str, value: str, argument: str) -> Ref:
    """A filter value (global id, database id or slug) as the query layer's reference."""
    ref = parse_ref(value)
    if ref is not None:
        return ref
    parsed = parse_global_id(value)
    if parsed is None:
        raise BadInput(f"{argument}: {value!r} is neither a global id, a database id nor a slug", field=argument)
    if parsed[0] != type_name:
        raise BadInput(f"{argument}: {value!r} is the id of a {parsed[0]}, not of a {type_name}", field=argument)
    return parsed[1]


def to_refs(type_name: str, values: list[str] | None, argument: str) -> tuple[Ref, ...]:
    return tuple(to_ref(type_name, v, argument) for v in values or ())


def page_of(
    cursors: Cursors,
    *,
    sort: str,
    filter: msgspec.Struct | None,
    value_type: type,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Page:
    """first/after/last/before as a keyset page (sizes were checked before execution)."""

    def key(token: str | None) -> Key | None:
        return None if token is None else cursors.decode(token, sort=sort, filter=filter, value_type=value_type)

    if last is not None and first is None:
        return Page(limit=last, after=key(after), before=key(before), direction="backward")
    return Page(limit=DEFAULT_LIMIT if first is None else first, after=key(after), before=key(before))
