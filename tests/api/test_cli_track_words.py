"""`sitrep track-words`: the search terms whose full-text counts come from bitmaps (0060)."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from db import bitcount, timeline
from db.filters import EntryFilter
from tests.api.test_cli_import import sitrep
from tests.db import factories as f
from tests.db.factories import T0


async def test_track_words_then_count_a_phrase_from_bitmaps(db_dsn: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        blog = await f.blog(conn)
        for headline in ("Air defence at work", "Air defence again", "A drone over the air base"):
            await f.entry(conn, blog, T0, headline=headline)
        done = sitrep("track-words", "--min-entries", "2", database_url=db_dsn, data_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        # air (3), defenc (2), 'air defenc' (2)
        assert done.stdout == "tracking 3 search terms found in at least 2 entries\n"
        flt = EntryFilter(q='"air defence"')
        sql = bitcount.compile_count(flt, {}, await bitcount.search_words(conn, flt))
        assert sql is not None
        assert "'w'" in sql[0]
        assert await timeline.count(conn, flt) == 2
    finally:
        await conn.close()
    bad = sitrep("track-words", "--min-entries", "0", database_url=db_dsn, data_dir=tmp_path)
    assert bad.returncode == 2
    assert "Invalid value for '--min-entries'" in bad.stderr
    assert "Traceback" not in bad.stderr
