"""Re-link every stored entry: after the gazetteer file was edited, or the linker improved.

The gazetteer is loaded first (upsert by slug), then entries are read in id order, in
batches, and linked again. An entry whose links come out the same is not written at all;
one whose links differ gets its entry_actors, entry_locations and entry_sources rewritten
(with the entry's published_at, as the link tables keep it) and its updated_at bumped, one
transaction per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import asyncpg
import msgspec

from db.ingest.gazetteer import DEFAULT_PATH, LoadCounts, load_parsed, read
from db.ingest.linker import Linker
from db.ingest.store import ensure_found
from db.sql import query

BATCH = 500

# what an entry links: actor (id, role) pairs, location ids, source ids
_Wanted = tuple[frozenset[tuple[int, str]], frozenset[int], frozenset[int]]
Progress = Callable[[int, int], None]  # (entries done so far, entries in all); first call (0, total)


class RelinkResult(msgspec.Struct, frozen=True):
    gazetteer: LoadCounts
    entries: int  # entries read
    changed: int  # entries whose links were rewritten


async def count_entries(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(query("relink_count_entries")))


async def relink(
    conn: asyncpg.Connection,
    gazetteer: Path | str = DEFAULT_PATH,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> RelinkResult:
    """Reload the gazetteer, then re-link every entry; see the module docstring."""
    g = read(gazetteer)
    loaded = await load_parsed(conn, g)
    linker = await Linker.load(conn, g)
    total = await count_entries(conn)
    if progress is not None:
        progress(0, total)
    ids: dict[tuple[str, str], int] = {(r["kind"], r["slug"]): r["id"] for r in await conn.fetch(query("relink_ids"))}

    seen = changed = 0
    after = 0
    contexts: dict[int, tuple[str, ...]] = {}
    while True:
        rows = await conn.fetch(query("relink_entries_after"), after, batch)
        if not rows:
            break
        after = rows[-1]["id"]
        for r in rows:
            if r["blog_id"] not in contexts:  # the blog's countries, as an import links its page
                contexts[r["blog_id"]] = linker.countries_of([r["title"], r["standfirst"] or ""])
        found = {r["id"]: linker.link(r["headline"], r["body"], contexts[r["blog_id"]]) for r in rows}
        if any(("location", spec.slug) not in ids for links in found.values() for spec in links.new_locations) or any(
            ("actor", spec.slug) not in ids for links in found.values() for spec in links.new_actors
        ):
            await ensure_found(conn, list(found.values()))
            ids.update({(r["kind"], r["slug"]): r["id"] for r in await conn.fetch(query("relink_ids"))})
        wanted: dict[int, _Wanted] = {}
        for entry_id, links in found.items():
            wanted[entry_id] = (
                frozenset((ids[("actor", a.slug)], a.role) for a in links.actors if ("actor", a.slug) in ids),
                frozenset(ids[("location", s)] for s in links.locations if ("location", s) in ids),
                frozenset(ids[("source", s)] for s in links.sources if ("source", s) in ids),
            )
        async with conn.transaction():
            stored = await _stored(conn, list(wanted))
            todo = [entry for entry, links in wanted.items() if stored.get(entry, _EMPTY) != links]
            if todo:
                await _rewrite(conn, todo, wanted)
        seen += len(rows)
        changed += len(todo)
        if progress is not None:
            progress(seen, max(total, seen))
    return RelinkResult(gazetteer=loaded, entries=seen, changed=changed)


_EMPTY: _Wanted = (frozenset(), frozenset(), frozenset())


async def _stored(conn: asyncpg.Connection, entries: list[int]) -> dict[int, _Wanted]:
    actors: dict[int, set[tuple[int, str]]] = {}
    locations: dict[int, set[int]] = {}
    sources: dict[int, set[int]] = {}
    for r in await conn.fetch(query("relink_actor_links"), entries):
        actors.setdefault(r["entry_id"], set()).add((r["actor_id"], r["role"]))
    for r in await conn.fetch(query("relink_location_links"), entries):
        locations.setdefault(r["entry_id"], set()).add(r["location_id"])
    for r in await conn.fetch(query("relink_source_links"), entries):
        sources.setdefault(r["entry_id"], set()).add(r["source_id"])
    return {
        entry: (
            frozenset(actors.get(entry, ())),
            frozenset(locations.get(entry, ())),
            frozenset(sources.get(entry, ())),
        )
        for entry in entries
    }


async def _rewrite(conn: asyncpg.Connection, todo: list[int], wanted: dict[int, _Wanted]) -> None:
    await conn.execute(query("relink_delete_links"), todo)
    actor_rows = [(entry, actor, role) for entry in todo for actor, role in sorted(wanted[entry][0])]
    location_rows = [(entry, place) for entry in todo for place in sorted(wanted[entry][1])]
    source_rows = [(entry, source) for entry in todo for source in sorted(wanted[entry][2])]
    if actor_rows:
        entry_ids, actor_ids, roles = zip(*actor_rows, strict=True)
        await conn.execute(query("relink_insert_actor_links"), list(entry_ids), list(actor_ids), list(roles))
    if location_rows:
        entry_ids, place_ids = zip(*location_rows, strict=True)
        await conn.execute(query("relink_insert_location_links"), list(entry_ids), list(place_ids))
    if source_rows:
        entry_ids, source_ids = zip(*source_rows, strict=True)
        await conn.execute(query("relink_insert_source_links"), list(entry_ids), list(source_ids))
    await conn.execute(query("relink_touch_entries"), todo)
