"""Entries already rendered as JSON, kept per process so a JSON list needs no relations or encoding.

A JSON page of `/v1/entries` is its keys (`db.entries.list_keys`: the page statement itself,
under every filter and cursor, reading no links) and then each entry's JSON: from here when
kept and still current, else read with its links (`linked_by_ids`) and encoded once. The
bytes are exactly what msgspec writes for `db.rows.Entry`, so a page is byte-identical with
or without the cache (tests/api/test_entry_cache.py).

What is kept is trusted only under the rules of `db.refs.Heard`: while the live hub hears
every change, for a page whose snapshot saw no change the hub has not passed on yet. A change
to an entry (its row, links or media) drops that entry; a change to a blog, actor, location
or source drops everything, since any entry may show it. An entry is also taken only at the
`updated_at` the page read. Memory is bounded by `max_bytes` (SITREP_ENTRY_CACHE_MB, 0 turns
the cache off), the oldest entries going first.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import msgspec

from db.entries import EntryKey
from db.refs import Heard
from db.rows import Entry

_encode = msgspec.json.Encoder().encode


class Rendered:
    """One entry's JSON, the `updated_at` it was read at, and a digest of the JSON (for ETags)."""

    __slots__ = ("body", "digest", "updated_at")

    def __init__(self, entry: Entry) -> None:
        self.updated_at: datetime = entry.updated_at
        self.body = _encode(entry)
        self.digest = hashlib.sha256(self.body).digest()[:16]


class EntryCache(Heard):
    def __init__(self, *, max_bytes: int, max_age: float = 300.0) -> None:
        super().__init__(max_age=max_age)
        self.max_bytes = max_bytes
        self.size = 0  # bytes kept
        self._items: dict[int, Rendered] = {}

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._items)

    def forget(self, entity: str, entity_id: int) -> None:
        if entity != "entry":
            self.clear()  # a blog, actor, location or source: any entry may show it
            return
        self.generation += 1
        item = self._items.pop(entity_id, None)
        if item is not None:
            self.size -= len(item.body)

    def clear(self) -> None:
        super().clear()
        self._items.clear()
        self.size = 0

    def get(self, key: EntryKey) -> Rendered | None:
        item = self._items.get(key.id)
        if item is None or item.updated_at != key.updated_at:
            return None
        return item

    def render(self, entries: dict[int, Entry], generation: int) -> dict[int, Rendered]:
        """The entries' JSON; kept if nothing was forgotten since `generation` was read (before
        the entries were)."""
        rendered = {entry_id: Rendered(entry) for entry_id, entry in entries.items()}
        if not self.live or generation != self.generation or not self.enabled:
            return rendered
        items = self._items
        for entry_id, item in rendered.items():
            old = items.pop(entry_id, None)
            if old is not None:
                self.size -= len(old.body)
            items[entry_id] = item
            self.size += len(item.body)
        while self.size > self.max_bytes and items:
            oldest = next(iter(items))
            self.size -= len(items.pop(oldest).body)
        return rendered
