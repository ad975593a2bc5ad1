"""The sample dataset: one day of live coverage (13 September 2023), written by us.

`day-2023-09-13.txt` is a live-blog page in the text form the importer reads, so the sample
goes through the same parser, linker and store as any imported page. Its facts (times,
people, places, sources) follow a real day of reporting; every sentence is our own.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from db.sql import query

PAGE = Path(__file__).parent / "day-2023-09-13.txt"


async def load_sample_if_empty(conn: asyncpg.Connection) -> str | None:
    """Import the sample page into a database without blogs; say what was loaded, or None.

    The check and the import are one transaction under an advisory lock, so two servers
    starting at once load the sample once.
    """
    from db.ingest.gazetteer import ensure_gazetteer
    from db.ingest.linker import Linker
    from db.ingest.store import import_text

    text = PAGE.read_text(encoding="utf-8")
    async with conn.transaction():
        await conn.execute(query("sample_lock"))
        if await conn.fetchval(query("sample_has_blogs")):
            return None
        await ensure_gazetteer(conn)
        linker = await Linker.load(conn)
        result = await import_text(conn, text, linker)
    return f"1 blog, {result.created} entries"
