"""`sitrep import PAGE.txt ...` run as a user runs it: a subprocess, its exit code and its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import REPO

SITREP = Path(sys.executable).parent / "sitrep"


def sitrep(*args: str, database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SITREP_DATA_DIR": str(data_dir),
        "SITREP_SECRET": "test-secret",
    }
    return subprocess.run(
        [str(SITREP), *args], capture_output=True, text=True, env=env, timeout=120, cwd=REPO, check=False
    )


def assert_one_line_error(run: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    for needle in needles:
        assert needle in lines[0]
    assert run.stdout == ""


async def blog_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count = await conn.fetchval("SELECT count(*) FROM blogs")
        assert isinstance(count, int)
        return count
    finally:
        await conn.close()


@pytest.fixture
def page_file(tmp_path: Path, page_text: str) -> Path:
    path = tmp_path / "page.txt"
    path.write_text(page_text, encoding="utf-8")
    return path


async def test_a_missing_file(db_dsn: str, tmp_path: Path) -> None:
    run = sitrep("import", str(tmp_path / "missing.txt"), database_url=db_dsn, data_dir=tmp_path)
    assert_one_line_error(run, "missing.txt", "cannot read", "No such file")


async def test_an_unreadable_file(db_dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.txt"
    folder.mkdir()
    run = sitrep("import", str(folder), database_url=db_dsn, data_dir=tmp_path)
    assert_one_line_error(run, "a-folder.txt", "cannot read")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    run = sitrep("import", str(binary), database_url=db_dsn, data_dir=tmp_path)
    assert_one_line_error(run, "binary.txt", "not UTF-8")


async def test_a_bad_page_names_the_line_and_nothing_is_imported(
    db_dsn: str, tmp_path: Path, page_file: Path, page_text: str
) -> None:
    bad = tmp_path / "bad.txt"
    broken = page_text.replace("2 Mar 2024 - 12:00", "2 Mar 2024 - 12.00")
    bad.write_text(broken, encoding="utf-8")
    line = broken.splitlines().index("    2 Mar 2024 - 12.00") + 1
    # the good page comes first: it is not imported either
    run = sitrep("import", str(page_file), str(bad), database_url=db_dsn, data_dir=tmp_path)
    assert_one_line_error(run, "bad.txt", f"line {line}", "expected an entry time")
    assert await blog_count(db_dsn) == 0


async def test_an_unreachable_database(tmp_path: Path, page_file: Path) -> None:
    run = sitrep("import", str(page_file), database_url="postgresql://postgres@127.0.0.1:1/x", data_dir=tmp_path)
    assert_one_line_error(run, "cannot reach the database")


async def test_import_then_import_again(db_dsn: str, tmp_path: Path, page_file: Path) -> None:
    first = sitrep("import", str(page_file), database_url=db_dsn, data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        f"{page_file}: blog ukraine-war-live-2024-03-02 created, entries: 15 created, 0 updated, 0 unchanged"
    )
    again = sitrep("import", str(page_file), database_url=db_dsn, data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith("unchanged, entries: 0 created, 0 updated, 15 unchanged")
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM entries") == 15
        # the real linker ran: the page names people, places and sources it knows
        assert await conn.fetchval("SELECT count(DISTINCT entry_id) FROM entry_actors") > 0
        assert await conn.fetchval("SELECT count(DISTINCT entry_id) FROM entry_locations") > 0
    finally:
        await conn.close()
