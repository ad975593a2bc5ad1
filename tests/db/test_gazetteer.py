"""The shipped gazetteer and its loader: complete, idempotent, and all-or-nothing on a bad file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from db.ingest.gazetteer import DEFAULT_PATH, GazetteerError, ensure_gazetteer, load_gazetteer, read

SLUG = r"^[a-z][a-z0-9-]*$"


def _shipped() -> dict[str, Any]:
    return json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def _loc(doc: dict[str, Any], slug: str) -> dict[str, Any]:
    return next(loc for loc in doc["locations"] if loc["slug"] == slug)


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "gazetteer.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


async def _counts(conn: asyncpg.Connection) -> tuple[int, int, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM actors), (SELECT count(*) FROM locations), (SELECT count(*) FROM sources)"
    )
    assert row is not None
    return row[0], row[1], row[2]


async def test_loads_into_an_empty_database(conn: asyncpg.Connection) -> None:
    g = read()
    counts = await load_gazetteer(conn)
    assert (counts.actors_inserted, counts.locations_inserted, counts.sources_inserted) == (
        len(g.actors),
        len(g.locations),
        len(g.sources),
    )
    assert await _counts(conn) == (len(g.actors), len(g.locations), len(g.sources))
    # the hierarchy reaches the closure table: Sevastopol is in Crimea is in Ukraine
    ancestors = await conn.fetch(
        "SELECT a.slug, c.depth FROM location_closure c JOIN locations a ON a.id = c.ancestor_id "
        "JOIN locations l ON l.id = c.location_id WHERE l.slug = 'sevastopol' ORDER BY c.depth"
    )
    assert [(r["slug"], r["depth"]) for r in ancestors] == [("sevastopol", 0), ("crimea", 1), ("ukraine", 2)]
    peskov = await conn.fetchrow("SELECT name, kind, aliases, country FROM actors WHERE slug = 'dmitry-peskov'")
    assert peskov is not None
    assert (peskov["kind"], peskov["country"]) == ("person", "RU")
    assert {"Peskov", "Dimitry Peskov", "\u041f\u0435\u0441\u043a\u043e\u0432"} <= set(peskov["aliases"])


async def test_loading_twice_changes_nothing(conn: asyncpg.Connection) -> None:
    await load_gazetteer(conn)
    before = await conn.fetch(
        "SELECT 'a' || id, updated_at FROM actors UNION ALL SELECT 'l' || id, updated_at FROM locations"
    )
    changes = await conn.fetchval("SELECT count(*) FROM changes")
    again = await load_gazetteer(conn)
    assert not again.changed, again
    after = await conn.fetch(
        "SELECT 'a' || id, updated_at FROM actors UNION ALL SELECT 'l' || id, updated_at FROM locations"
    )
    assert sorted(map(tuple, before)) == sorted(map(tuple, after))
    assert await conn.fetchval("SELECT count(*) FROM changes") == changes, "a no-op load must not reach the change feed"


async def test_an_edited_file_updates_only_what_changed(conn: asyncpg.Connection, tmp_path: Path) -> None:
    await load_gazetteer(conn)
    doc = _shipped()
    peskov = next(a for a in doc["actors"] if a["slug"] == "dmitry-peskov")
    peskov["aliases"].append("Peskoff")
    doc["locations"].append(
        {"slug": "vasylivka", "name": "Vasylivka", "kind": "city", "parent": "zaporizhzhia-oblast",
         "latitude": 47.44, "longitude": 35.27, "country": "UA", "aliases": ["Vasilyevka"]}
    )  # fmt: skip
    counts = await load_gazetteer(conn, _write(tmp_path, doc))
    assert (counts.actors_updated, counts.actors_inserted) == (1, 0)
    assert (counts.locations_inserted, counts.locations_updated) == (1, 0)
    assert "Peskoff" in await conn.fetchval("SELECT aliases FROM actors WHERE slug = 'dmitry-peskov'")
    parent = await conn.fetchval(
        "SELECT p.slug FROM locations l JOIN locations p ON p.id = l.parent_id WHERE l.slug = 'vasylivka'"
    )
    assert parent == "zaporizhzhia-oblast"


def test_every_location_has_coordinates_and_below_country_a_parent() -> None:
    doc = _shipped()
    slugs = {loc["slug"] for loc in doc["locations"]}
    for loc in doc["locations"]:
        assert -90 <= loc["latitude"] <= 90, loc["slug"]
        assert -180 <= loc["longitude"] <= 180, loc["slug"]
        if loc["kind"] == "country":
            assert loc.get("parent") is None, loc["slug"]
        elif loc["kind"] != "water":
            assert loc.get("parent") in slugs, loc["slug"]
    depth = {}
    parents = {loc["slug"]: loc.get("parent") for loc in doc["locations"]}
    for slug in parents:
        n, cursor = 0, slug
        while parents[cursor] is not None:
            cursor, n = parents[cursor], n + 1
        depth[slug] = n
    assert max(depth.values()) >= 3, "a hierarchy at least country > region > city > site"


async def test_the_database_agrees_every_location_below_country_has_a_parent(conn: asyncpg.Connection) -> None:
    await load_gazetteer(conn)
    orphans = await conn.fetch(
        "SELECT slug FROM locations WHERE parent_id IS NULL AND kind NOT IN ('country', 'water')"
    )
    assert orphans == []


def test_the_shipped_file_covers_the_seed_and_the_war() -> None:
    g = read()
    actors = {a.slug for a in g.actors}
    assert {
        "vladimir-putin", "kim-jong-un", "kim-yo-jong", "volodymyr-zelenskyy", "dmitry-peskov", "rishi-sunak",
        "sergei-shoigu", "alexander-bogomaz", "matthew-miller", "andriy-yusov", "black-sea-fleet",
        "romanian-defence-ministry", "nso-group", "citizen-lab",
    } <= actors  # fmt: skip
    assert {a.kind for a in g.actors} == {"person", "organization", "state", "military"}
    locations = {loc.slug for loc in g.locations}
    assert {"sevastopol", "crimea", "ukraine", "vostochny-cosmodrome", "bryansk-oblast", "tulcea-county", "danube",
            "black-sea"} <= locations  # fmt: skip
    assert len(g.locations) >= 60
    assert len(g.actors) >= 30
    assert len(g.sources) >= 20
    assert {"tass", "ria-novosti", "interfax", "reuters", "ap", "afp", "telegram", "x"} <= {s.slug for s in g.sources}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: _loc(d, "sevastopol").update(parent="atlantis"), "unknown location 'atlantis'"),
        (lambda d: _loc(d, "sevastopol").update(kind="continent"), "kind"),
        (lambda d: d["actors"][2].update(kind="alien"), "kind"),
        (lambda d: d["sources"][0].update(slug="Bad Slug"), "slug"),
        (lambda d: _loc(d, "sevastopol").update(latitude=123.0), "latitude"),
        (lambda d: _loc(d, "sevastopol").pop("parent"), "needs a parent"),
        (lambda d: d["actors"].append(dict(d["actors"][0])), "appears twice"),
        (lambda d: _loc(d, "romania").update(parent="sevastopol"), "country is a root"),
        (lambda d: d["actors"][0].update(colour="red"), "colour"),
    ],
)
async def test_an_invalid_file_is_refused_naming_the_item_and_nothing_is_written(
    conn: asyncpg.Connection, tmp_path: Path, edit: Any, message: str
) -> None:
    doc = _shipped()
    edit(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(GazetteerError) as caught:
        await load_gazetteer(conn, path)
    detail = caught.value.detail
    assert message in detail, detail
    assert any(f"{section}[" in detail for section in ("actors", "locations", "sources")), detail
    assert await _counts(conn) == (0, 0, 0)


async def test_a_parent_cycle_is_refused(tmp_path: Path, conn: asyncpg.Connection) -> None:
    doc = _shipped()
    crimea = next(loc for loc in doc["locations"] if loc["slug"] == "crimea")
    crimea["parent"] = "sevastopol"
    with pytest.raises(GazetteerError, match=r"(crimea|sevastopol).*cycle"):
        await load_gazetteer(conn, _write(tmp_path, doc))
    assert await _counts(conn) == (0, 0, 0)


async def test_a_parent_already_in_the_database_is_accepted(conn: asyncpg.Connection, tmp_path: Path) -> None:
    await conn.execute(
        "INSERT INTO locations (slug, name, kind, latitude, longitude) VALUES ('narnia', 'Narnia', 'country', 1, 1)"
    )
    doc = {"locations": [{"slug": "cair-paravel", "name": "Cair Paravel", "kind": "city", "parent": "narnia",
                          "latitude": 1.5, "longitude": 1.5}]}  # fmt: skip
    counts = await load_gazetteer(conn, _write(tmp_path, doc))
    assert counts.locations_inserted == 1


async def test_a_file_that_is_not_json_is_refused(tmp_path: Path, conn: asyncpg.Connection) -> None:
    path = tmp_path / "gazetteer.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(GazetteerError, match="not valid JSON"):
        await load_gazetteer(conn, path)
    with pytest.raises(GazetteerError, match="cannot read"):
        await load_gazetteer(conn, tmp_path / "missing.json")


async def test_ensure_loads_only_into_an_empty_catalogue(conn: asyncpg.Connection) -> None:
    first = await ensure_gazetteer(conn)
    assert first is not None
    assert first.actors_inserted > 0
    await conn.execute("DELETE FROM actors WHERE slug = 'dmitry-peskov'")  # a user's edit is kept
    assert await ensure_gazetteer(conn) is None
    assert await conn.fetchval("SELECT count(*) FROM actors WHERE slug = 'dmitry-peskov'") == 0
