"""Real PostgreSQL for every test: a template database built once from the real migrations,
cloned per test (CREATE DATABASE … TEMPLATE), as procrastinate's suite does.

DATABASE_URL selects the server; without it the suite starts the embedded PostgreSQL in a
temporary folder, so a fresh machine needs nothing but Python.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from db.migrate import migrate
from db.pool import connect

REPO = Path(__file__).resolve().parent.parent
# the publisher's page, beside the repository in the workspace only: never shipped, never copied
SEED = REPO.parent / "shared" / "seeds" / "aljazeera-2023-09-13.txt"
# our own live-blog page in the same text form (tests/data/pages/README.md says what it covers)
PAGE = REPO / "tests" / "data" / "pages" / "night-of-drones-2024-03-02.txt"


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextmanager
def embedded_data_dir() -> Iterator[Path]:
    """A folder for an embedded server's data, outside pytest's tmp tree: as root, the server runs
    as its own system user, and every pytest session resets pytest-of-<user>/ to mode 0700, which
    would lock a server started by another session out of its own data."""
    path = Path(tempfile.mkdtemp(prefix="sitrep-test-pg-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """A DSN of the server's maintenance database."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from db import embedded

    with embedded_data_dir() as data_dir:
        dsn, server = embedded.start(data_dir)
        try:
            yield dsn
        finally:
            embedded.stop(server)


async def _admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_db(server_dsn: str) -> Iterator[str]:
    """The name of a database holding every migration and nothing else."""
    name = f"sitrep_tpl_{uuid.uuid4().hex[:12]}"

    async def build() -> None:
        await _admin(server_dsn, f'CREATE DATABASE "{name}"')
        conn = await connect(with_database(server_dsn, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    try:
        yield name
    finally:
        asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db_dsn(server_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A fresh database cloned from the template, dropped after the test."""
    name = f"sitrep_t_{uuid.uuid4().hex[:12]}"
    await _admin(server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        yield with_database(server_dsn, name)
    finally:
        await _admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(db_dsn)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def page_text() -> str:
    """The project's own test page: 15 entries across midnight, with the form's hard cases."""
    return PAGE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def seed_text() -> str:
    """The publisher's page, for the tests that check the parser and linker on a real page too."""
    if not SEED.is_file():
        pytest.skip(f"publisher's seed page not present ({SEED} is outside the repository)")
    return SEED.read_text(encoding="utf-8")
