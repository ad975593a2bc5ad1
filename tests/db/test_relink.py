"""`sitrep relink`: an edited gazetteer reaches every stored entry, and only changed entries are touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from db.ingest.gazetteer import DEFAULT_PATH, load_gazetteer
from db.ingest.linker import Linker
from db.ingest.page import parse_page
from db.ingest.relink import relink
from db.ingest.store import import_page
from tests.conftest import REPO

SITREP = Path(sys.executable).parent / "sitrep"


async def _import_page(conn: asyncpg.Connection, page_text: str) -> None:
    await load_gazetteer(conn)
    linker = await Linker.load(conn)
    await import_page(conn, parse_page(page_text), linker.link)


def _edited(tmp_path: Path) -> Path:
    """The shipped gazetteer plus an organisation our test page names in one entry (12:00)."""
    doc: dict[str, Any] = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    doc["actors"].append(
        {
            "slug": "kyiv-school-of-economics",
            "name": "Kyiv School of Economics",
            "kind": "organization",
            "country": "UA",
        }
    )
    path = tmp_path / "gazetteer.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


async def _state(conn: asyncpg.Connection) -> dict[int, tuple[Any, ...]]:
    rows = await conn.fetch(
        """SELECT e.id, e.updated_at,
                  (SELECT array_agg(a.slug || ':' || ea.role ORDER BY a.slug) FROM entry_actors ea
                     JOIN actors a ON a.id = ea.actor_id WHERE ea.entry_id = e.id) AS actors,
                  (SELECT array_agg(location_id ORDER BY location_id) FROM entry_locations WHERE entry_id = e.id) AS places,
                  (SELECT array_agg(source_id ORDER BY source_id) FROM entry_sources WHERE entry_id = e.id) AS sources
             FROM entries e"""
    )
    return {r["id"]: tuple(r)[1:] for r in rows}


async def test_relink_with_an_unchanged_gazetteer_touches_nothing(conn: asyncpg.Connection, page_text: str) -> None:
    await _import_page(conn, page_text)
    before = await _state(conn)
    changes = await conn.fetchval("SELECT count(*) FROM changes")
    result = await relink(conn, batch=7)
    assert (result.entries, result.changed) == (15, 0)
    assert not result.gazetteer.changed
    assert await _state(conn) == before
    assert await conn.fetchval("SELECT count(*) FROM changes") == changes


async def test_an_edited_gazetteer_relinks_the_entries_it_concerns(
    conn: asyncpg.Connection, page_text: str, tmp_path: Path
) -> None:
    await _import_page(conn, page_text)
    before = await _state(conn)
    done: list[tuple[int, int]] = []
    result = await relink(conn, _edited(tmp_path), batch=4, progress=lambda n, total: done.append((n, total)))
    assert done == [(0, 15), (4, 15), (8, 15), (12, 15), (15, 15)]  # batches of 4
    assert result.gazetteer.actors_inserted == 1
    assert result.changed == 1
    after = await _state(conn)
    changed = [entry for entry in after if after[entry] != before[entry]]
    assert len(changed) == 1
    (entry,) = changed
    assert "kyiv-school-of-economics:mentioned" in after[entry][1]
    assert after[entry][0] > before[entry][0], "updated_at moves for an entry whose links changed"
    # the link rows carry their entry's published_at
    mismatched = await conn.fetchval(
        "SELECT count(*) FROM entry_actors ea JOIN entries e ON e.id = ea.entry_id WHERE ea.published_at <> e.published_at"
    )
    assert mismatched == 0
    count = await conn.fetchval(
        "SELECT c.entry_count FROM actor_entry_counts c JOIN actors a ON a.id = c.actor_id WHERE a.slug = 'kyiv-school-of-economics'"
    )
    assert count == 1


async def test_a_removed_alias_unlinks(conn: asyncpg.Connection, page_text: str, tmp_path: Path) -> None:
    await _import_page(conn, page_text)
    doc: dict[str, Any] = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    musk = next(a for a in doc["actors"] if a["slug"] == "elon-musk")
    musk["aliases"] = []  # "Musk" alone no longer links; the 12:00 entry names "Elon Musk" once
    path = tmp_path / "gazetteer.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    linked = "SELECT count(*) FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id WHERE a.slug = 'elon-musk'"
    assert await conn.fetchval(linked) == 1
    result = await relink(conn, path)
    assert result.gazetteer.actors_updated == 1
    assert await conn.fetchval(linked) == 1  # still named in full, so still linked
    assert result.changed == 0


def _sitrep(*args: str, dsn: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "SITREP_DATA_DIR": str(tmp_path), "SITREP_SECRET": "test-secret"}
    return subprocess.run(
        [str(SITREP), *args], capture_output=True, text=True, env=env, timeout=120, cwd=REPO, check=False
    )


async def test_the_command(db_dsn: str, page_text: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        await _import_page(conn, page_text)
    finally:
        await conn.close()
    run = _sitrep("relink", "--gazetteer", str(_edited(tmp_path)), dsn=db_dsn, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "actors 1 new" in run.stdout
    assert "entries: 15 relinked, 1 with changed links" in run.stdout
    assert "Traceback" not in run.stderr


async def test_the_command_refuses_a_bad_gazetteer_in_one_line(db_dsn: str, tmp_path: Path) -> None:
    doc: dict[str, Any] = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    next(loc for loc in doc["locations"] if loc["slug"] == "izmail")["parent"] = "atlantis"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    run = _sitrep("relink", "--gazetteer", str(bad), dsn=db_dsn, tmp_path=tmp_path)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "'izmail'" in lines[0]
    assert "atlantis" in lines[0]
    assert "Traceback" not in run.stderr
