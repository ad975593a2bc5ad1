"""A real browser for the pages the app serves: Debian's headless Chromium driven by Playwright.

Every request the page makes to anything but 127.0.0.1 is refused (and recorded), so a
test that passes proves the page works with no network. Screenshots go to the folder in
SITREP_ARTIFACTS, or to the test's temporary folder; the path is printed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import msgspec
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from db import keys
from db.sample import load_sample_if_empty
from tests.api.live import live_server

CHROMIUM = Path(os.environ.get("SITREP_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = (
    f"these tests drive headless Chromium and found none at {CHROMIUM}: install it with "
    "`apt-get install -y chromium` (Debian/Ubuntu; .ci/run does), or point SITREP_CHROMIUM at a "
    "Chromium binary. Do not run `playwright install`: the tests use the system browser."
)
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
BLOG = "russia-ukraine-war-2023-09-13"
SECRET = "browser-test-secret"  # with no SITREP_KEY_PEPPER, the secret peppers key hashes


class Served(msgspec.Struct):
    base: str
    write_key: str


@asynccontextmanager
async def _serve(conn: asyncpg.Connection, db_dsn: str, tmp_path: Path, **env: str) -> AsyncIterator[Served]:
    """The app on a free port over a database holding the sample day, and a key that may write."""
    assert await load_sample_if_empty(conn) is not None
    _, token = await keys.create_key(conn, SECRET, name="browser-tests", scopes=["read", "write"], rate=1_000_000)
    log = tmp_path / "server.log"
    with live_server(db_dsn, tmp_path / "data", log, SITREP_SECRET=SECRET, SITREP_KEY_PEPPER="", **env) as base:
        yield Served(base=base, write_key=token)


@pytest.fixture
async def served(conn: asyncpg.Connection, db_dsn: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with _serve(conn, db_dsn, tmp_path, SITREP_ANONYMOUS_RATE="100000") as served:
        yield served


@pytest.fixture
async def served_with_key(conn: asyncpg.Connection, db_dsn: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with _serve(conn, db_dsn, tmp_path, SITREP_REQUIRE_KEY="true") as served:
        yield served


@pytest.fixture
def chromium() -> Path:
    """The system's Chromium; its absence fails the test with how to install it (never a skip)."""
    if not CHROMIUM.is_file():
        pytest.fail(INSTALL_HINT, pytrace=False)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium))
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SITREP_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


class Offline(msgspec.Struct):
    page: Page
    blocked: list[str]  # requests refused because they left the machine
    errors: list[str]  # uncaught script errors and console errors


@pytest.fixture
async def offline(browser: Browser) -> AsyncIterator[Offline]:
    """A page whose every request off loopback is refused."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    watched = Offline(page=await context.new_page(), blocked=[], errors=[])

    async def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).hostname in LOOPBACK:
            await route.continue_()
        else:
            watched.blocked.append(url)
            await route.abort("internetdisconnected")

    await context.route("**/*", guard)
    watched.page.on("pageerror", lambda error: watched.errors.append(f"pageerror: {error}"))
    watched.page.on("console", lambda message: watched.errors.append(message.text) if message.type == "error" else None)
    try:
        yield watched
    finally:
        await context.close()
