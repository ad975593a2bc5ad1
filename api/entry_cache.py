"""Entries already rendered as JSON, kept per process so a JSON list needs no relations or encoding.

A JSON page of `/v1/entries` is read one of two ways (api/controllers/entries.py):
- keys first: its keys (`db.entries.list_keys`: the page statement itself, reading no links),
  then each entry's JSON from here when kept and still current, the rest read with their links
  (`linked_by_ids`) and encoded once. Two round trips when anything is missing;
- in one statement: the page with its links (`db.entries.list_linked`), each entry encoded and
  kept here for later pages.
Keys first pays only when nearly every entry is here: `keys_first` says so while the share of
a page's entries found here (measured either way, decaying) is at least `KEYS_FIRST_HIT_RATE`.
On a working set larger than the cache the hit rate falls below it and every page is one
statement, as without the cache; once the cache is full, only one page in FILL_EVERY is encoded
entry by entry and kept (the others are one encode, as without the cache), so eviction churn
costs neither a round trip nor an encode per entry on every page. (Filling every page while
half a page was found, as an earlier version did, kept a mix of 50 actors' pages at a hit rate
of 0.4-0.5 that never reached keys first: all the churn, none of the gain; bench/compare.py's
actor mix ran at 0.47 of bare with the cache against 0.70 without it. Filling one page in 8
still cost that mix 13%: 442 req/s against 507 without the cache, at a hit rate of 0.46-0.5.)
The bytes are exactly what msgspec writes for `db.rows.Entry`, so a page is byte-identical with
or without the cache (tests/api/test_entry_cache.py).

What is kept is trusted only under the rules of `db.refs.Heard`: while the live hub hears
every change, for a page whose snapshot saw no change the hub has not passed on yet. A change
to an entry (its row, links or media) drops that entry; a change to a blog, actor, location
or source drops everything, since any entry may show it. An entry is also taken only at the
`updated_at` the page read. Memory is bounded by `max_bytes` (SITREP_ENTRY_CACHE_MB, 0 turns
the cache off), the oldest entries going first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from xxhash import xxh3_128_digest

from db.entries import EntryKey
from db.refs import Heard
from db.rows import Entry

_encode = msgspec.json.Encoder().encode
# keys first only while at least this share of a page's entries is found here
KEYS_FIRST_HIT_RATE = 0.8
_DECAY_EVERY = 2_000  # lookups; then both counts halve, so the rate follows the traffic
# once the cache is full (and pages are not read keys first), one page in this many fills it:
# encoding entries one by one costs about twice one encode of the page (~0.25 ms more a page).
# On a working set larger than the cache, what is kept is a sample of it whatever the rate of
# filling, so the hit rate it settles at is the same; the rate only says how soon traffic that
# narrows to what fits finds its pages here (one in 32: within a few thousand pages)
FILL_EVERY = 32


class Versioned(Protocol):
    """An entry's id and the `updated_at` of the version meant (`EntryKey`, or an `Entry`)."""

    @property
    def id(self) -> int: ...

    @property
    def updated_at(self) -> datetime: ...


class Rendered:
    """One entry's JSON, the `updated_at` it was read at, and a digest of the JSON (for ETags)."""

    __slots__ = ("body", "digest", "updated_at")

    def __init__(self, entry: Entry) -> None:
        self.updated_at: datetime = entry.updated_at
        self.body = _encode(entry)
        self.digest = xxh3_128_digest(self.body)


class EntryCache(Heard):
    def __init__(self, *, max_bytes: int, max_age: float = 300.0) -> None:
        super().__init__(max_age=max_age)
        self.max_bytes = max_bytes
        self.size = 0  # bytes kept
        # oldest first; an OrderedDict, not a dict: popping a dict's first item again and again
        # leaves a run of deleted slots that every next `iter()` walks (eviction would go quadratic)
        self._items: OrderedDict[int, Rendered] = OrderedDict()
        # for /metrics and `keys_first`: totals, and decaying counts of page entries looked up / found
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._looked = 0.0
        self._found = 0.0
        self._pages = 0

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

    def get(self, key: EntryKey | Versioned) -> Rendered | None:
        item = self._items.get(key.id)
        if item is None or item.updated_at != key.updated_at:
            return None
        return item

    @property
    def hit_rate(self) -> float:
        """The recent share of page entries found here (0 before any is counted)."""
        return self._found / self._looked if self._looked else 0.0

    @property
    def keys_first(self) -> bool:
        """Whether a page should read its keys first and its entries from here (see the module doc)."""
        return self.enabled and self.live and self._looked > 0 and self._found >= KEYS_FIRST_HIT_RATE * self._looked

    def fills(self) -> bool:
        """Whether a page read in one statement should be kept here: every page while there is
        room, else one in FILL_EVERY. Kept entries pay only once pages read keys first; until
        then each fill of a full cache is an encode per entry and as many evictions. That is
        enough for the rate to rise to keys first when the traffic narrows to what fits (nothing
        kept is then evicted), without paying on every page while it cannot."""
        self._pages += 1
        # room: under 7/8 full (eviction keeps a full cache just under its bound, not 1/8 below)
        return self.size * 8 < self.max_bytes * 7 or self._pages % FILL_EVERY == 0

    def count(self, looked: int, found: int) -> None:
        """A page looked up `looked` entries here and found `found` (or would have: a page read in
        one statement counts what it would have found)."""
        self.hits += found
        self.misses += looked - found
        self._looked += looked
        self._found += found
        if self._looked > _DECAY_EVERY:
            self._looked /= 2
            self._found /= 2

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
            self.size -= len(items.popitem(last=False)[1].body)
            self.evictions += 1
        return rendered


class EntryCacheCollector(Collector):
    """/metrics: what the entry cache holds and how it is used (this process)."""

    def __init__(self, cache: EntryCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        cache = self.cache
        yield GaugeMetricFamily("sitrep_entry_cache_entries", "Entries kept rendered as JSON", value=len(cache))
        yield GaugeMetricFamily("sitrep_entry_cache_bytes", "Bytes of JSON kept", value=cache.size)
        yield GaugeMetricFamily("sitrep_entry_cache_max_bytes", "The most bytes it may keep", value=cache.max_bytes)
        yield GaugeMetricFamily(
            "sitrep_entry_cache_hit_rate", "Recent share of page entries found in it", value=cache.hit_rate
        )
        yield GaugeMetricFamily(
            "sitrep_entry_cache_keys_first",
            "1 while pages read their keys first (hit rate >= 0.8)",
            value=cache.keys_first,
        )
        yield CounterMetricFamily("sitrep_entry_cache_hits", "Page entries found in it", value=cache.hits)
        yield CounterMetricFamily("sitrep_entry_cache_misses", "Page entries not found in it", value=cache.misses)
        yield CounterMetricFamily("sitrep_entry_cache_evictions", "Entries dropped for room", value=cache.evictions)
