"""examples/export_actor_csv.py against a live server: every entry naming the actor in the range, once."""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.api.live import REPO, live_server
from tests.db import factories as f

SCRIPT = REPO / "examples" / "export_actor_csv.py"


async def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), *args]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=120)


async def test_export_actor_csv_follows_every_page(conn: asyncpg.Connection, db_dsn: str, tmp_path: Path) -> None:
    blog = await f.blog(conn, "long-day")
    peskov = await f.actor(conn, "dmitry-peskov", "Dmitry Peskov")
    other = await f.actor(conn, "someone-else")
    kyiv = await f.location(conn, "kyiv", 50.45, 30.52)
    # 450 entries naming Peskov inside the range (three pages of 200), some outside it, some naming only another actor
    inside = []
    for i in range(450):
        headline = f'Peskov, update {i}: "quoted", with commas' if i % 50 == 0 else f"update {i}"
        body = ["line one\nline two"] if i % 70 == 0 else [f"paragraph {i}"]
        inside.append(
            await f.entry(
                conn, blog, f.at(60 + i), headline=headline, body=body, actors={peskov: "speaker"}, locations=[kyiv]
            )
        )
    await f.entry(conn, blog, f.at(0), headline="too early", actors=[peskov])
    await f.entry(conn, blog, f.at(60 + 450), headline="at until: excluded", actors=[peskov])
    await f.entry(conn, blog, f.at(100), headline="another actor", actors=[other])

    out = tmp_path / "peskov.csv"
    since, until = f.at(60).isoformat(), f.at(60 + 450).isoformat()
    with live_server(db_dsn, tmp_path / "data", SITREP_ANONYMOUS_RATE="100000") as base:
        done = await run_script("dmitry-peskov", "--since", since, "--until", until, "--base-url", base, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 450 entries" in done.stderr

    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in rows] == list(reversed(inside))  # newest first, each once, header once
    assert all(r["actors"] == "dmitry-peskov" and r["speakers"] == "dmitry-peskov" for r in rows)
    assert all(r["locations"] == "kyiv" for r in rows)
    quoted = next(r for r in rows if r["headline"].startswith("Peskov, update 0"))
    assert quoted["headline"] == 'Peskov, update 0: "quoted", with commas'
    assert quoted["body"] == "line one\nline two"


async def test_export_reports_a_problem_in_one_line(db_dsn: str, tmp_path: Path) -> None:
    with live_server(db_dsn, tmp_path / "data") as base:
        done = await run_script("no-such-actor", "--base-url", base)
    assert done.returncode != 0
    assert "404" in done.stderr
    assert "no-such-actor" in done.stderr
    assert "Traceback" not in done.stderr
