"""An editor's review of discovered actors (db/ingest/curate.py) on an imported page about Sudan."""

from __future__ import annotations

import asyncpg
import pytest

from db.errors import Conflict, InvalidInput, NotFound
from db.ingest import curate
from db.ingest.evaluate import PAGES
from db.ingest.gazetteer import load_gazetteer
from db.ingest.linker import Linker
from db.ingest.page import parse_page
from db.ingest.relink import relink
from db.ingest.store import import_page

SUDAN = next(page for name, page, _ in PAGES if "sudan" in name)


@pytest.fixture
async def imported(conn: asyncpg.Connection) -> asyncpg.Connection:
    await load_gazetteer(conn)
    await import_page(conn, parse_page(SUDAN.read_text(encoding="utf-8")), await Linker.load(conn))
    return conn


async def _links(conn: asyncpg.Connection, slug: str) -> dict[int, str]:
    rows = await conn.fetch(
        "SELECT ea.entry_id, ea.role FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id WHERE a.slug = $1", slug
    )
    return {r["entry_id"]: r["role"] for r in rows}


async def test_discovered_actors_are_listed_with_the_phrase_that_found_them(imported: asyncpg.Connection) -> None:
    found = {d.slug: d for d in await curate.discovered(imported)}
    assert {"rapid-support-forces", "halima-osterberg", "egypt", "world-food-programme"} <= set(found)
    assert found["halima-osterberg"].discovered_by == "country director Halima Osterberg"
    assert (found["egypt"].kind, found["egypt"].country) == ("state", "EG")
    assert found["rapid-support-forces"].entries == 4
    assert all(d.status == "discovered" for d in found.values())
    with pytest.raises(InvalidInput):
        await curate.discovered(imported, "maybe")


async def test_confirm(imported: asyncpg.Connection) -> None:
    await curate.confirm(imported, "rapid-support-forces")
    assert [d.slug for d in await curate.discovered(imported, "confirmed")] == ["rapid-support-forces"]
    with pytest.raises(InvalidInput):
        await curate.confirm(imported, "vladimir-putin")  # from the gazetteer
    with pytest.raises(NotFound):
        await curate.confirm(imported, "nobody")


async def test_rename_keeps_the_links_and_the_old_name(imported: asyncpg.Connection) -> None:
    before = await _links(imported, "unhcr")
    assert before
    _, slug = await curate.rename(imported, "unhcr", "UN Refugee Agency")
    assert slug == "un-refugee-agency"
    assert await _links(imported, "un-refugee-agency") == before
    assert await imported.fetchval("SELECT aliases FROM actors WHERE slug = $1", slug) == ["UNHCR"]
    with pytest.raises(Conflict):
        await curate.rename(imported, "un-refugee-agency", "Rapid Support Forces")
    assert (await relink(imported)).changed == 0  # later links find the renamed actor under both names


async def test_merge_moves_links_and_names(imported: asyncpg.Connection) -> None:
    """An editor decides the SAF and the army's spokesperson's unit are one: links move, names stay."""
    await imported.execute(
        "INSERT INTO actors (slug, name, kind, country) VALUES ('sudan-army', 'Sudanese Army', 'military', 'SD')"
    )
    saf = await _links(imported, "sudanese-armed-forces")
    assert saf
    _, moved = await curate.merge(imported, "sudanese-armed-forces", "sudan-army")
    assert moved == len(saf)
    assert await _links(imported, "sudan-army") == saf
    assert await imported.fetchval("SELECT count(*) FROM actors WHERE slug = 'sudanese-armed-forces'") == 0
    aliases = await imported.fetchval("SELECT aliases FROM actors WHERE slug = 'sudan-army'")
    assert set(aliases) == {"Sudanese Armed Forces", "SAF"}
    # the merged actor's names link to the kept one from now on
    linker = await Linker.load(imported)
    links = linker.link("Update", ["The Sudanese Armed Forces (SAF) said it advanced."])
    assert [(a.slug, a.role) for a in links.actors] == [("sudan-army", "speaker")]
    with pytest.raises(InvalidInput):
        await curate.merge(imported, "sudan-army", "sudan-army")
    with pytest.raises(NotFound):
        await curate.merge(imported, "nobody", "sudan-army")


async def test_merge_keeps_one_link_per_entry_a_speaker_if_either_was(imported: asyncpg.Connection) -> None:
    await imported.execute("INSERT INTO actors (slug, name, kind) VALUES ('osterberg', 'Osterberg', 'person')")
    entry = next(iter(await _links(imported, "halima-osterberg")))
    await imported.execute(
        "INSERT INTO entry_actors (entry_id, actor_id, role, published_at) "
        "SELECT e.id, a.id, 'mentioned', e.published_at FROM entries e, actors a WHERE e.id = $1 AND a.slug = 'osterberg'",
        entry,
    )
    await curate.merge(imported, "halima-osterberg", "osterberg")
    assert (await _links(imported, "osterberg"))[entry] == "speaker"
