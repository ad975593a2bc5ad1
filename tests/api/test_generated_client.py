"""openapi/openapi.json generates a working client: openapi-python-client's output, imported and
used against a live server for a filtered list, a cursor walk and a createEntry with an
Idempotency-Key (the issue was a generated client that crashed on lists and could not write)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest

from db import keys as keydb
from tests.api.live import REPO, live_server
from tests.db import factories as f

PACKAGE = "sitrep_openapi_client"
PEPPER = "generated-client-pepper"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    out = tmp_path_factory.mktemp("generated") / "client"
    config = out.parent / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\nproject_name_override: {PACKAGE}\n", encoding="utf-8")
    tool = Path(sys.executable).parent / "openapi-python-client"
    # its post-hooks run ruff from PATH: the one installed beside it
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run(
        [str(tool), "generate", "--path", str(REPO / "openapi" / "openapi.json"), "--output-path", str(out),
         "--config", str(config)],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    # every operation is generated; the only warning allowed is the import's text/plain alternative
    skipped = [line for line in run.stdout.splitlines() if "will not be generated" in line]
    assert skipped == [], run.stdout
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_lists_walks_pages_and_writes_once(
    generated: ModuleType, conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    blog = await f.blog(conn, "long-day")
    peskov = await f.actor(conn, "dmitry-peskov", "Dmitry Peskov")
    other = await f.actor(conn, "someone-else")
    odesa = await f.location(conn, "odesa", 46.48, 30.72)
    named = [
        await f.entry(conn, blog, f.at(i), headline=f"Peskov {i}", actors={peskov: "speaker"}, locations=[odesa])
        for i in range(7)
    ]
    await f.entry(conn, blog, f.at(3.5), headline="someone else", actors=[other])
    _, token = await keydb.create_key(
        conn, PEPPER, name=f"gen-{uuid.uuid4().hex[:6]}", scopes=("read", "write"), rate=10_000
    )

    list_entries = _module("api.entries.list_entries")
    create_entry = _module("api.writes.create_entry")
    models = _module("models")
    with live_server(db_dsn, tmp_path / "data", SITREP_KEY_PEPPER=PEPPER) as base:
        client = generated.AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)
        with client as http:
            # a filtered list, typed: the JSON answer, not the GeoJSON one
            first = list_entries.sync(client=http, actor=["dmitry-peskov"], limit=3, count=True)
            assert isinstance(first, models.EntryList), first
            assert first.page.total == 7
            assert [e.headline for e in first.data] == ["Peskov 6", "Peskov 5", "Peskov 4"]
            assert first.data[0].actors[0].actor.slug == "dmitry-peskov"
            assert first.data[0].actors[0].role == models.EntryActorRole.SPEAKER

            # the other list that offers GeoJSON answers typed JSON too
            places = _module("api.locations.list_locations").sync(client=http, q="ode")
            assert isinstance(places, models.LocationList), places
            assert [p.slug for p in places.data] == ["odesa"]

            # the cursor walk: every entry once, newest first
            seen, cursor, pages = [], None, 0
            while True:
                page = list_entries.sync(client=http, actor=["dmitry-peskov"], limit=3, cursor=cursor)
                assert isinstance(page, models.EntryList), page
                seen += [e.id for e in page.data]
                pages += 1
                cursor = page.page.next_cursor
                if cursor is None:
                    break
            assert (seen, pages) == (list(reversed(named)), 3)

            # a bad parameter is a typed problem, not a crash
            bad = list_entries.sync(client=http, since="yesterday")
            assert isinstance(bad, models.Problem)
            assert bad.status == 400

            # createEntry with an Idempotency-Key: a retry answers the same entry, written once
            body = models.EntryCreate(
                blog="long-day",
                published_at=f.at(100),
                headline="Peskov speaks again",
                body=["A paragraph."],
                actors=[models.ActorLinkIn(actor="dmitry-peskov", role=models.ActorLinkInRole.SPEAKER)],
                locations=["odesa"],
            )
            key = uuid.uuid4().hex
            created = create_entry.sync_detailed(client=http, body=body, idempotency_key=key)
            assert created.status_code == 201, created.content
            assert isinstance(created.parsed, models.Entry)
            assert created.headers["location"] == f"/v1/entries/{created.parsed.id}"
            assert created.parsed.locations[0].slug == "odesa"
            again = create_entry.sync_detailed(client=http, body=body, idempotency_key=key)
            assert again.status_code == 201
            assert again.headers["idempotent-replayed"] == "true"
            assert again.parsed.id == created.parsed.id
    assert await conn.fetchval("SELECT count(*) FROM entries WHERE headline = 'Peskov speaks again'") == 1
