"""Keyset pages: what a caller asks for (`Page`), what it gets (`Paged`), and signed cursors.

A position in a list is its sort key and id (`Key`). Cursors carry a key, the sort and a hash
of the filter that produced it, signed with HMAC, so a cursor reused under another sort or
filter, or edited by hand, is refused (`InvalidInput`, field "cursor") instead of silently
answering a different list. Both skins use this module: REST's `next_cursor` and GraphQL's
edge cursors are the same tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import msgspec

from db.errors import InvalidInput
from db.filters import DEFAULT_LIMIT

T = TypeVar("T")
Key = tuple[Any, int | str]  # (sort value, id): a row's integer id, or an API key's text id
Direction = Literal["forward", "backward"]

_VERSION = 1
_MAC_BYTES = 16


class Page(msgspec.Struct, frozen=True, kw_only=True):
    """`forward`: the first `limit` rows after `after` (and before `before`, if given);
    `backward`: the last `limit` rows before `before` (GraphQL's last/before). Rows are
    always returned in the list's sort order."""

    limit: int = DEFAULT_LIMIT
    after: Key | None = None
    before: Key | None = None
    direction: Direction = "forward"
    count: bool = False


class Paged(msgspec.Struct, Generic[T], kw_only=True):
    """A page of rows, each row's key (for cursors), and whether more lie either side."""

    rows: list[T]
    keys: list[Key]
    has_next: bool
    has_previous: bool
    total: int | None = None

    @property
    def next_key(self) -> Key | None:
        return self.keys[-1] if self.has_next and self.keys else None

    @property
    def previous_key(self) -> Key | None:
        return self.keys[0] if self.has_previous and self.keys else None


def paged(rows: list[T], keys: Sequence[Key], page: Page, total: int | None = None) -> Paged[T]:
    """Trim the one extra row a query fetched and orient a backward page."""
    more = len(rows) > page.limit
    rows, kept = rows[: page.limit], list(keys[: page.limit])
    if page.direction == "backward":
        rows.reverse()
        kept.reverse()
        return Paged(rows=rows, keys=kept, has_next=page.before is not None, has_previous=more, total=total)
    return Paged(rows=rows, keys=kept, has_next=more, has_previous=page.after is not None, total=total)


def filter_hash(filter: msgspec.Struct | None) -> str:
    """A short digest of a filter: a cursor made under one filter is refused under another."""
    encoded = msgspec.json.encode(filter) if filter is not None else b"null"
    return hashlib.sha256(encoded).hexdigest()[:16]


class _Payload(msgspec.Struct, array_like=True):
    version: int
    sort: str
    filter: str
    value: Any
    id: int | str


class Cursors:
    """Encodes and checks cursors with one secret (settings.secret)."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a cursor secret is required")
        self._key = hashlib.sha256(b"sitrep-cursor\0" + secret.encode()).digest()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, key: Key, *, sort: str, filter: msgspec.Struct | None) -> str:
        value, id_ = key
        if isinstance(value, datetime):
            value = value.isoformat()
        body = msgspec.json.encode(_Payload(_VERSION, sort, filter_hash(filter), value, id_))
        token = body + self._mac(body)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def decode(
        self, token: str, *, sort: str, filter: msgspec.Struct | None, value_type: type, id_type: type = int
    ) -> Key:
        """The key a cursor stands for; InvalidInput if forged, damaged, or made for another list."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise _bad("not a cursor this API issued") from None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise _bad("not a cursor this API issued (or it was altered)")
        try:
            payload = msgspec.json.decode(body, type=_Payload)
        except msgspec.DecodeError:
            raise _bad("not a cursor this API issued") from None
        if payload.version != _VERSION:
            raise _bad("the cursor is from an older version of the API; start again without it")
        if payload.sort != sort or payload.filter != filter_hash(filter):
            raise _bad("the cursor was made for another sort or other filters; repeat those, or start again")
        if not isinstance(payload.id, id_type):
            raise _bad("not a cursor this API issued")
        try:
            value: Any = msgspec.convert(payload.value, value_type, strict=False)
        except msgspec.ValidationError:
            raise _bad("not a cursor this API issued") from None
        return (value, payload.id)


def _bad(reason: str) -> InvalidInput:
    return InvalidInput(reason, field="cursor")
