"""How long importing a page takes, as `sitrep import` does it: in a fresh process, then again.

    nice .venv/bin/python bench/import_page.py [--database-url postgresql://…/postgres] [PAGE.txt …]

Each run creates a scratch database on the given server (dropped at the end), loads the
gazetteer, and times, in a new Python process per page: reading the world gazetteer's index
(from its cache file, and built from the package data with the cache moved aside), compiling
the linker, and parsing, linking and storing the page; then the same page again in the same
process (what a running server pays). Without pages it times the project's annotated ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import asyncio, json, sys, time
t0 = time.perf_counter()
from db.ingest.linker import Linker
from db.ingest.page import parse_page
from db.ingest.store import import_page
from db.ingest.world import world
from db.pool import connect
t_import = time.perf_counter()

async def main():
    conn = await connect(sys.argv[1])
    text = open(sys.argv[2], encoding="utf-8").read()
    out = {"python_imports": t_import - t0}
    t = time.perf_counter(); world(); out["world_index"] = time.perf_counter() - t
    for label in ("first", "again"):  # a new page, then the same page again (nothing to write)
        t = time.perf_counter()
        linker = await Linker.load(conn)
        out[label + "_linker"] = time.perf_counter() - t
        t = time.perf_counter()
        await import_page(conn, parse_page(text), linker)
        out[label + "_import"] = time.perf_counter() - t
    out["total_first"] = time.perf_counter() - t0 - out["again_linker"] - out["again_import"]
    print(json.dumps(out))
    await conn.close()

asyncio.run(main())
"""


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("pages", nargs="*", type=Path)
    args = parser.parse_args()
    from db.ingest.evaluate import PAGES

    pages = args.pages or [page for _, page, _ in PAGES if page.exists()]
    name = f"sitrep_bench_import_{os.getpid()}"
    asyncio.run(_admin(args.database_url, f'CREATE DATABASE "{name}"'))
    scratch = args.database_url.rsplit("/", 1)[0] + "/" + name
    try:

        async def prepare() -> None:
            from db.ingest.gazetteer import load_gazetteer
            from db.migrate import migrate

            conn = await asyncpg.connect(scratch)
            try:
                await migrate(conn)
                await load_gazetteer(conn)
            finally:
                await conn.close()

        asyncio.run(prepare())
        rows = []
        for cold in (True, False):
            for page in pages:
                env = dict(os.environ)
                if cold:  # no cache file: the index is built from the package data
                    env["SITREP_CACHE_DIR"] = tempfile.mkdtemp(prefix="sitrep-cold-")
                run_db = f"{name}_run"
                asyncio.run(_admin(args.database_url, f'CREATE DATABASE "{run_db}" TEMPLATE "{name}"'))
                try:
                    run = subprocess.run(
                        [sys.executable, "-c", CHILD, args.database_url.rsplit("/", 1)[0] + "/" + run_db, str(page)],
                        capture_output=True,
                        text=True,
                        env=env,
                        cwd=ROOT,
                        check=True,
                    )
                finally:
                    asyncio.run(_admin(args.database_url, f'DROP DATABASE IF EXISTS "{run_db}" WITH (FORCE)'))
                rows.append((page.name, "built" if cold else "cached", json.loads(run.stdout)))
        print(
            "| page | world index | index load s | linker s | import s | first import in a fresh process s | again s |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for page_name, how, t in rows:
            print(
                f"| {page_name} | {how} | {t['world_index']:.2f} | {t['first_linker']:.2f} | "
                f"{t['first_import']:.2f} | {t['total_first']:.2f} | {t['again_linker'] + t['again_import']:.2f} |"
            )
    finally:
        asyncio.run(_admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
