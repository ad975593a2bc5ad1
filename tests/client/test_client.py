"""sitrep_client against a live server: pages by cursor, NDJSON exports, writes that are safe to
retry, bounded retries on 429 honouring Retry-After, and the change feed mirrored."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from db import keys as keydb
from sitrep_client import ApiError, Client, EntryCreate, EntryPatch
from sitrep_client.models import ActorLinkIn
from tests.api.live import live_server
from tests.db import factories as f

PEPPER = "client-test-pepper"


async def _key(conn: asyncpg.Connection, *scopes: str) -> str:
    _, token = await keydb.create_key(conn, PEPPER, name=f"c-{uuid.uuid4().hex[:6]}", scopes=scopes, rate=100_000)
    return token


async def test_reads_follow_cursors_stream_ndjson_and_name_bad_parameters(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    blog = await f.blog(conn, "long-day")
    peskov = await f.actor(conn, "dmitry-peskov", "Dmitry Peskov")
    kuleba = await f.actor(conn, "dmytro-kuleba", "Dmytro Kuleba")
    odesa = await f.location(conn, "odesa", 46.48, 30.72)
    named = [await f.entry(conn, blog, f.at(i), actors={peskov: "speaker"}, locations=[odesa]) for i in range(11)]
    both = await f.entry(conn, blog, f.at(20), actors=[peskov, kuleba])
    await f.entry(conn, blog, f.at(30), actors=[kuleba])
    with live_server(db_dsn, tmp_path / "data", SITREP_ANONYMOUS_RATE="100000") as base, Client(base) as api:
        pages = list(api.pages("/v1/entries", dict, actor="dmitry-peskov", limit=4))
        assert [len(p.data) for p in pages] == [4, 4, 4]
        walked = [e.id for e in api.entries(actor="dmitry-peskov", limit=4)]
        assert walked == [both, *reversed(named)]
        # repeated values, times as datetimes, the sort
        window = api.entries(
            actor=["dmitry-peskov", "dmytro-kuleba"],
            actor_match="all",
            since=f.at(0),
            until=f.at(25),
            sort="published_at",
        )
        assert [e.id for e in window] == [both]
        oldest = next(api.entries(location="odesa", sort="published_at", limit=2))
        assert (oldest.id, oldest.actors[0].actor.slug, oldest.actors[0].role) == (named[0], "dmitry-peskov", "speaker")
        assert isinstance(oldest.published_at, datetime)
        assert oldest.published_at.tzinfo is not None
        # the NDJSON export: the same entries in one streamed answer
        assert list(api.export_entries(actor="dmitry-peskov")) == list(api.entries(actor="dmitry-peskov"))
        assert sum(b.count for b in api.timeline("hour", actor="dmitry-peskov")) == 12
        assert api.actor("dmitry-peskov").id == peskov
        assert api.location(odesa).slug == "odesa"
        with pytest.raises(ApiError) as bad:
            list(api.entries(since="yesterday", sort=""))
        assert bad.value.status == 400
        assert {e["name"] for e in bad.value.errors} == {"since", "sort"}
        with pytest.raises(ApiError) as missing:
            api.entry(10**9)
        assert missing.value.status == 404


class LosesFirstAnswer(httpx.HTTPTransport):
    """Sends every request; the first write's answer is lost on the way back, as over a bad link."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.sent.append((request.method, request.headers.get("idempotency-key")))
        if request.method == "POST" and len([m for m, _ in self.sent if m == "POST"]) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


async def test_writes_are_made_once_though_retried_and_the_feed_mirrors_them(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path, page_text: str
) -> None:
    await f.blog(conn, "long-day")
    await f.actor(conn, "dmitry-peskov", "Dmitry Peskov")
    await f.location(conn, "odesa", 46.48, 30.72)
    writer = await _key(conn, "read", "write")
    transport = LosesFirstAnswer()
    with (
        live_server(db_dsn, tmp_path / "data", SITREP_KEY_PEPPER=PEPPER) as base,
        Client(base, writer, transport=transport, sleep=lambda _: None) as api,
    ):
        # the mirror starts where the feed is now
        start = 0
        for change in api.changes():
            start = change.seq
        entry = api.create_entry(
            EntryCreate(
                blog="long-day",
                published_at=datetime(2024, 3, 2, 10, 30, tzinfo=UTC),
                headline="Peskov speaks",
                body=["A paragraph."],
                actors=[ActorLinkIn(actor="dmitry-peskov", role="speaker")],
                locations=["odesa"],
            )
        )
        # the answer was lost and the write retried with the same key: one entry, the same answer
        posts = [key for method, key in transport.sent if method == "POST"]
        assert len(posts) == 2
        assert posts[0] is not None
        assert posts[0] == posts[1]
        assert await conn.fetchval("SELECT count(*) FROM entries") == 1
        assert entry.id == await conn.fetchval("SELECT id FROM entries")
        assert entry.actors[0].role == "speaker"
        # a dict body works too, and each call has its own key
        second = api.create_entry({"blog": "long-day", "published_at": "2024-03-02T11:00:00Z", "headline": "Later"})
        changed = api.update_entry(entry.id, EntryPatch(headline="Peskov speaks again"))
        assert changed.headline == "Peskov speaks again"
        api.delete_entry(second.id)
        keys = [key for method, key in transport.sent if method != "GET"]
        assert len(set(keys)) == len(keys) - 1  # only the retried POST repeated its key

        # mirroring: apply the feed after `start`, deletions included
        mirror: dict[int, Any] = {}
        for change in api.changes(start, limit=2):
            if change.entity != "entry":
                continue
            if change.op == "delete":
                mirror.pop(change.id, None)
            else:
                mirror[change.id] = change.data
        assert set(mirror) == {entry.id}
        assert mirror[entry.id]["headline"] == "Peskov speaks again"

        # a page imported as text
        imported = api.import_page(page_text)
        assert (imported.blog_slug, imported.created) == ("ukraine-war-live-2024-03-02", 15)
        assert api.import_page(page_text).unchanged == 15

        # following the feed: a change made after the iterator caught up still arrives
        last = max(c.seq for c in api.changes(start))
        threading.Timer(0.3, lambda: api.delete_entry(entry.id)).start()
        with Client(base, writer) as follower:
            followed = next(c for c in follower.changes(last, follow=True, poll_interval=0.1) if c.entity == "entry")
        assert (followed.op, followed.id) == ("delete", entry.id)


def _rate_limited(base: str, slow_key: str) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with Client(base, sleep=sleep) as api:
        for _ in range(200):  # every call answers; once the burst is spent, after waiting
            assert list(api.blogs()) == []
            if waits:
                break
    assert waits == [1]

    # bounded: a key of one request a minute is refused for about a minute after its first;
    # with no real waiting the client retries `retries` times, each after Retry-After, then gives up
    counted: list[float] = []
    with Client(base, slow_key, retries=3, max_wait=120, sleep=counted.append) as api:
        assert list(api.blogs()) == []
        with pytest.raises(ApiError) as limited:
            list(api.blogs())
    assert limited.value.status == 429
    assert len(counted) == 3
    assert all(50 <= w <= 60 for w in counted), counted
    # a wait above max_wait is not waited for at all
    with Client(base, slow_key, max_wait=30, sleep=counted.append) as api, pytest.raises(ApiError):
        list(api.blogs())
    assert len(counted) == 3


async def test_429_is_retried_after_retry_after_and_the_retries_are_bounded(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    _, slow_key = await keydb.create_key(conn, PEPPER, name="slow", scopes=("read",), rate=1)
    # anonymous: 60 a minute, so once the burst is spent one request a second (Retry-After: 1);
    # the in-process limiter, so no other test shares the buckets
    env = {"SITREP_ANONYMOUS_RATE": "60", "REDIS_URL": "", "SITREP_KEY_PEPPER": PEPPER}
    with live_server(db_dsn, tmp_path / "data", **env) as base:
        await asyncio.to_thread(_rate_limited, base, slow_key)
