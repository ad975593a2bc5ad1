"""Live push across instances: two sitrep processes on one database, SSE and GraphQL clients.

Every test here runs real uvicorn processes on 127.0.0.1 against the per-test database; a
write on one instance must reach subscribers of the other through PostgreSQL NOTIFY.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import websockets

from api.live import Hub, follow, tombstone_may_match
from db import keys, writes
from db.filters import EntryFilter
from db.pool import connect, create_pool

REPO = Path(__file__).resolve().parents[2]
SECRET = "h8-live-test-secret"


@contextlib.contextmanager
def serve(
    dsn: str, data_dir: Path, processes: list[subprocess.Popen[bytes]] | None = None, **env: str
) -> Iterator[str]:
    """One sitrep instance on a free port; its base URL once /health answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    environment = {
        **os.environ,
        "DATABASE_URL": dsn,
        "SITREP_DATA_DIR": str(data_dir),
        "SITREP_SECRET": SECRET,
        "SITREP_KEY_PEPPER": "",
        "SITREP_LOAD_SAMPLE": "false",
        "SITREP_POOL_MAX": "8",
        **env,
    }
    command = [sys.executable, "-m", "uvicorn", "api.asgi:app", "--fd", str(sock.fileno()), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=REPO, env=environment, pass_fds=[sock.fileno()])
    if processes is not None:
        processes.append(process)
    sock.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the server exited with {process.returncode}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not answer /health within 30 s"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Event:
    id: int
    type: str
    data: dict[str, Any]
    received: float


@dataclass
class SseClient:
    """Reads one SSE stream in the background, collecting events and comments."""

    url: str
    headers: dict[str, str]
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    status: int | None = None
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(5, read=None)) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                self.status = response.status_code
                self.opened.set()
                fields: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    elif line == "":
                        if "data" in fields and "id" in fields:
                            self.events.append(
                                Event(
                                    int(fields["id"]),
                                    fields.get("event", "message"),
                                    msgspec.json.decode(fields["data"]),
                                    time.time(),
                                )
                            )
                            self.arrived.set()
                        fields = {}
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        finally:
            self.opened.set()
            self.ended.set()

    async def start(self) -> SseClient:
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.opened.wait(), 10)
        await asyncio.sleep(0.05)  # the subscription is registered once the first bytes flow
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self.task

    async def wait_for(self, count: int, within: float) -> list[Event]:
        """The events so far, once there are `count` of them or `within` seconds have passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while len(self.events) < count:
                    self.arrived.clear()
                    await self.arrived.wait()
        return self.events


@dataclass
class GraphQLSubscriber:
    """One graphql-transport-ws connection running one subscription, collecting its payloads."""

    base: str
    token: str | None
    query: str
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _run(self) -> None:
        url = self.base.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
            payload = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            await ws.send(msgspec.json.encode({"type": "connection_init", "payload": payload}).decode())
            assert msgspec.json.decode(await ws.recv())["type"] == "connection_ack"
            await ws.send(
                msgspec.json.encode({"id": "1", "type": "subscribe", "payload": {"query": self.query}}).decode()
            )
            await asyncio.sleep(0.2)  # the subscription registers with the hub
            self.ready.set()
            async for message in ws:
                self.received.append((time.time(), msgspec.json.decode(message)))
                self.arrived.set()

    async def start(self) -> GraphQLSubscriber:
        self.task = asyncio.create_task(self._run())
        done, _ = await asyncio.wait(
            [self.task, asyncio.create_task(self.ready.wait())], timeout=10, return_when=asyncio.FIRST_COMPLETED
        )
        if self.task in done:
            self.task.result()  # raise what went wrong
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await self.task

    async def wait_for(self, count: int, within: float) -> list[dict[str, Any]]:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while len(self.received) < count:
                    self.arrived.clear()
                    await self.arrived.wait()
        return [m for _, m in self.received]


@pytest.fixture
async def write_token(db_dsn: str) -> str:
    conn = await connect(db_dsn)
    try:
        _, token = await keys.create_key(conn, SECRET, name="live-tests", scopes=["read", "write"], rate=1_000_000)
    finally:
        await conn.close()
    return token


@pytest.fixture
def two_instances(db_dsn: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with (
        serve(db_dsn, tmp_path / "a", SITREP_HEARTBEAT_SECONDS="0.5") as a,
        serve(db_dsn, tmp_path / "b", SITREP_HEARTBEAT_SECONDS="0.5") as b,
    ):
        yield a, b


async def _catalog(base: str, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        for path, body in (
            ("/v1/blogs", {"slug": "day-1", "title": "Day 1", "published_at": "2023-09-13T00:00:00Z"}),
            ("/v1/actors", {"slug": "peskov", "name": "Dmitry Peskov", "kind": "person", "country": "RU"}),
            ("/v1/actors", {"slug": "zelenskyy", "name": "Volodymyr Zelenskyy", "kind": "person", "country": "UA"}),
        ):
            response = await client.post(path, json=body)
            assert response.status_code == 201, response.text


def _entry(n: int, actor: str = "peskov") -> dict[str, Any]:
    return {
        "blog": "day-1",
        "published_at": "2023-09-13T10:00:00Z",
        "headline": f"Update {n}",
        "body": [f"Paragraph of update {n}."],
        "actors": [{"actor": actor, "role": "speaker"}],
        "locations": [],
        "sources": [],
    }


async def _committed_at(dsn: str, seq: int) -> float:
    conn = await connect(dsn)
    try:
        at: datetime = await conn.fetchval("SELECT at FROM changes WHERE seq = $1", seq)
    finally:
        await conn.close()
    return at.timestamp()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_post_on_one_instance_reaches_an_sse_client_of_the_other_within_a_second(
    two_instances: tuple[str, str], write_token: str, db_dsn: str
) -> None:
    a, b = two_instances
    await _catalog(a, _auth(write_token))
    sse = await SseClient(f"{b}/v1/stream/entries", _auth(write_token)).start()
    published = await GraphQLSubscriber(
        b, write_token, "subscription { entryPublished { databaseId headline actors { role actor { slug } } } }"
    ).start()
    updated = await GraphQLSubscriber(
        b, write_token, 'subscription { entryUpdated(filter: {actor: ["peskov"]}) { databaseId headline } }'
    ).start()
    try:
        async with httpx.AsyncClient(base_url=a, headers=_auth(write_token)) as client:
            created = (await client.post("/v1/entries", json=_entry(1))).json()
            await sse.wait_for(1, 5.0)
            pushed = await published.wait_for(1, 5.0)
            # within a second of the commit (the time the change log took when it gave the seq)
            commit = await _committed_at(db_dsn, sse.events[0].id)
            assert sse.events[0].received - commit < 1.0
            assert published.received[0][0] - commit < 1.0
            assert [(e.type, e.data["id"], e.data["headline"]) for e in sse.events] == [
                ("created", created["id"], "Update 1")
            ]
            assert pushed == [
                {
                    "id": "1",
                    "type": "next",
                    "payload": {
                        "data": {
                            "entryPublished": {
                                "databaseId": created["id"],
                                "headline": "Update 1",
                                "actors": [{"role": "SPEAKER", "actor": {"slug": "peskov"}}],
                            }
                        },
                        "extensions": {"seq": sse.events[0].id},  # the change's seq, as SSE's id
                    },
                }
            ]
            assert sse.events[0].data == created  # the same entry JSON as REST

            patched = await client.patch(f"/v1/entries/{created['id']}", json={"headline": "Update 1, revised"})
            assert patched.status_code == 200
            deleted = await client.delete(f"/v1/entries/{created['id']}")
            assert deleted.status_code == 204
            await sse.wait_for(3, 5.0)
            changed = await updated.wait_for(1, 5.0)
            assert updated.received[0][0] - await _committed_at(db_dsn, sse.events[1].id) < 1.0
        assert [m["payload"]["data"]["entryUpdated"]["headline"] for m in changed] == ["Update 1, revised"]
        assert len(published.received) == 1  # updates and deletes are not publications
        assert [(e.type, e.data["headline"]) for e in sse.events] == [
            ("created", "Update 1"),
            ("updated", "Update 1, revised"),
            ("deleted", "Update 1, revised"),
        ]
        assert [e.id for e in sse.events] == sorted(e.id for e in sse.events)
        await asyncio.sleep(1.5)
        assert "heartbeat" in sse.comments  # an idle stream keeps talking (every 0.5 s here)
    finally:
        await sse.stop()
        await published.stop()
        await updated.stop()


async def test_a_graphql_socket_takes_its_key_from_connection_init(
    two_instances: tuple[str, str], write_token: str
) -> None:
    a, _ = two_instances
    url = a.replace("http://", "ws://") + "/graphql"
    protocol = [websockets.Subprotocol("graphql-transport-ws")]
    async with websockets.connect(url, subprotocols=protocol) as ws:
        await ws.send('{"type": "connection_init", "payload": {"Authorization": "Bearer sk_nope_nope"}}')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    async with websockets.connect(url, subprotocols=protocol) as ws:
        await ws.send(
            '{"type": "subscribe", "id": "1", "payload": {"query": "subscription { entryPublished { id } }"}}'
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401  # a subscribe before connection_init
    async with websockets.connect(url, subprotocols=protocol) as ws:
        await ws.send(msgspec.json.encode({"type": "connection_init", "payload": {"X-API-Key": write_token}}).decode())
        assert msgspec.json.decode(await ws.recv()) == {"type": "connection_ack"}
        await ws.send('{"type": "ping"}')
        assert msgspec.json.decode(await ws.recv()) == {"type": "pong"}
        query = 'subscription { entryPublished(filter: {actor: ["nobody-at-all"]}) { id } }'
        await ws.send(msgspec.json.encode({"type": "subscribe", "id": "7", "payload": {"query": query}}).decode())
        answer = msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5))
        assert answer["id"] == "7"
        assert answer["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_the_stream_applies_the_entry_filters(two_instances: tuple[str, str], write_token: str) -> None:
    a, b = two_instances
    await _catalog(a, _auth(write_token))
    only_zelenskyy = await SseClient(f"{b}/v1/stream/entries?actor=zelenskyy", _auth(write_token)).start()
    try:
        async with httpx.AsyncClient(base_url=a, headers=_auth(write_token)) as client:
            ids = []
            for n, actor in enumerate(["peskov", "zelenskyy", "peskov", "zelenskyy"]):
                response = await client.post("/v1/entries", json=_entry(n, actor))
                assert response.status_code == 201
                ids.append(response.json()["id"])
            for entry_id in ids[:2]:  # a deletion reaches only the streams the entry matched
                assert (await client.delete(f"/v1/entries/{entry_id}")).status_code == 204
        events = await only_zelenskyy.wait_for(3, 5.0)
        await asyncio.sleep(0.3)
        assert [(e.type, e.data["headline"]) for e in events] == [
            ("created", "Update 1"),
            ("created", "Update 3"),
            ("deleted", "Update 1"),
        ]
    finally:
        await only_zelenskyy.stop()
    async with httpx.AsyncClient(base_url=b, headers=_auth(write_token)) as client:
        unknown = await client.get("/v1/stream/entries?actor=nobody-at-all")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        bad = await client.get("/v1/stream/entries?since=yesterday")
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["name"] == "since"
        resume = await client.get("/v1/stream/entries", headers={"Last-Event-ID": "not-a-seq"})
        assert resume.status_code == 400


@pytest.mark.parametrize("how", ["header", "query"])
async def test_a_client_that_reconnects_with_last_event_id_gets_exactly_what_it_missed(
    two_instances: tuple[str, str], write_token: str, how: str
) -> None:
    a, b = two_instances
    await _catalog(a, _auth(write_token))
    async with httpx.AsyncClient(base_url=a, headers=_auth(write_token)) as client:
        first = await SseClient(f"{b}/v1/stream/entries", _auth(write_token)).start()
        for n in range(3):
            await client.post("/v1/entries", json=_entry(n))
        seen = await first.wait_for(3, 5.0)
        await first.stop()
        assert len(seen) == 3
        last = seen[-1].id
        for n in range(3, 8):  # published while the client is away
            await client.post("/v1/entries", json=_entry(n))
        url, headers = f"{b}/v1/stream/entries", _auth(write_token)
        if how == "header":
            headers = {**headers, "Last-Event-ID": str(last)}
        else:
            url += f"?last_event_id={last}"
        second = await SseClient(url, headers).start()
        try:
            for n in range(8, 10):  # and live again
                await client.post("/v1/entries", json=_entry(n))
            got = await second.wait_for(7, 10.0)
            await asyncio.sleep(0.3)
            assert [e.data["headline"] for e in got] == [f"Update {n}" for n in range(3, 10)]
            assert [e.id for e in got] == sorted({e.id for e in got})
            assert got[0].id > last
        finally:
            await second.stop()


@pytest.mark.slow
async def test_a_burst_of_500_writes_reaches_20_subscribers_each_once_and_in_order(
    two_instances: tuple[str, str], write_token: str, db_dsn: str
) -> None:
    a, b = two_instances
    await _catalog(a, _auth(write_token))
    subscribers = [await SseClient(f"{(a, b)[i % 2]}/v1/stream/entries", _auth(write_token)).start() for i in range(20)]
    try:
        writes_per_writer, writers = 50, 10

        async def writer(w: int) -> None:
            async with httpx.AsyncClient(base_url=(a, b)[w % 2], headers=_auth(write_token), timeout=30) as client:
                for n in range(writes_per_writer):
                    response = await client.post("/v1/entries", json=_entry(w * 1000 + n))
                    assert response.status_code == 201, response.text

        started = time.monotonic()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        wrote = time.monotonic() - started
        for sub in subscribers:
            await sub.wait_for(500, 15.0)
        conn = await connect(db_dsn)
        try:  # when each change committed: `at` is taken at commit, when its seq is assigned
            committed = {r["seq"]: r["at"].timestamp() for r in await conn.fetch("SELECT seq, at FROM changes")}
        finally:
            await conn.close()
        latencies: list[float] = []
        for sub in subscribers:
            ids = [e.id for e in sub.events]
            assert len(ids) == 500  # every event...
            assert len(set(ids)) == 500  # ...exactly once...
            assert ids == sorted(ids)  # ...in seq order
            assert all(e.type == "created" for e in sub.events)
            latencies += [e.received - committed[e.id] for e in sub.events]
        assert len({tuple(e.id for e in s.events) for s in subscribers}) == 1  # the same sequence for everyone
        latencies.sort()
        median = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(
            f"\nburst: 500 writes in {wrote:.2f} s over 2 instances, 20 SSE subscribers, {len(latencies)} deliveries;"
            f" latency (commit -> client) median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms,"
            f" max {latencies[-1] * 1000:.1f} ms"
        )
        # a bound on being stuck, not a speed target (those are bench/'s): on a loaded 2-core CI
        # machine the p99 has been 1.19 s; the second-level promise is
        # test_a_post_on_one_instance_reaches_an_sse_client_of_the_other_within_a_second
        assert latencies[-1] < 10.0
    finally:
        for sub in subscribers:
            await sub.stop()


async def test_the_hub_reconnects_after_losing_its_listen_connection_and_misses_nothing(
    two_instances: tuple[str, str], write_token: str, db_dsn: str
) -> None:
    a, b = two_instances
    await _catalog(a, _auth(write_token))
    sse = await SseClient(f"{b}/v1/stream/entries", _auth(write_token)).start()
    admin = await connect(db_dsn)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'sitrep-live'"
        )
        assert killed == 2  # one LISTEN connection per instance
        async with httpx.AsyncClient(base_url=a, headers=_auth(write_token)) as client:
            for n in range(5):  # committed while neither hub is listening
                assert (await client.post("/v1/entries", json=_entry(n))).status_code == 201
        got = await sse.wait_for(5, 5.0)
        assert [e.data["headline"] for e in got] == [f"Update {n}" for n in range(5)]
        listening = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sitrep-live'"
        )
        assert listening == 2
    finally:
        await admin.close()
        await sse.stop()


async def test_a_stopping_server_ends_its_streams_instead_of_waiting_for_them(
    db_dsn: str, tmp_path: Path, write_token: str
) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    with serve(db_dsn, tmp_path, processes) as base:
        sse = await SseClient(f"{base}/v1/stream/entries", _auth(write_token)).start()
        processes[0].terminate()
        stopped = time.monotonic()
        await asyncio.wait_for(sse.ended.wait(), 5)
        await asyncio.to_thread(processes[0].wait, 5)  # TimeoutExpired if it hangs on the open stream
        assert time.monotonic() - stopped < 5
        await sse.stop()


async def test_a_slow_subscriber_is_cut_off_without_slowing_the_others(db_dsn: str) -> None:
    pool = await create_pool(db_dsn, min_size=1, max_size=4)
    hub = Hub(db_dsn, pool, queue_size=1000, poll_interval=0.5)
    await hub.start()
    conn = await connect(db_dsn)
    try:
        await writes.create_blog(
            conn,
            writes.BlogCreate(slug="day-1", title="Day 1", published_at=datetime.fromisoformat("2023-09-13T00:00Z")),
        )
        fast_seen: list[int] = []

        async def fast() -> None:
            async for change in follow(hub, EntryFilter(), None, 0.2):
                if change is not None:
                    fast_seen.append(change.id)
                    if len(fast_seen) == 20:
                        return

        slow, _ = hub.subscribe(EntryFilter(), maxsize=5)  # never reads
        reader = asyncio.create_task(fast())
        await asyncio.sleep(0.05)
        for n in range(20):
            await writes.create_entry(
                conn,
                writes.EntryCreate(
                    blog="day-1", published_at=datetime.fromisoformat("2023-09-13T10:00Z"), headline=f"E{n}", actors=[]
                ),
            )
        await asyncio.wait_for(reader, 5)
        assert len(fast_seen) == 20
        assert slow.overflowed
        assert slow.closed
        assert slow.queue.get_nowait() is None  # it ends where its client stopped reading: no gap
        assert slow not in hub._subscribers
    finally:
        await conn.close()
        await hub.aclose()
        await pool.close()


LAST_STATE: dict[str, Any] = {
    "id": 9,
    "blog": {"id": 1, "slug": "day-1", "title": "Day 1"},
    "kind": "post",
    "published_at": "2023-09-13T10:00:00+00:00",
    "updated_at": "2023-09-13T10:05:00+00:00",
    "actors": [{"role": "speaker", "actor": {"id": 5, "slug": "peskov"}}],
    "sources": [{"id": 3, "slug": "tass"}],
    "locations": [{"id": 7, "slug": "moscow"}],
}
T = datetime.fromisoformat


@pytest.mark.parametrize(
    ("filter", "delivered"),
    [
        (EntryFilter(), True),
        (EntryFilter(blog=(1,)), True),
        (EntryFilter(blog=(2,)), False),
        (EntryFilter(actor=(5, 6)), True),
        (EntryFilter(actor=(5, 6), actor_match="all"), False),
        (EntryFilter(source=(4,)), False),
        (EntryFilter(kind=("video",)), False),
        (EntryFilter(since=T("2023-09-13T11:00Z")), False),
        (EntryFilter(until=T("2023-09-13T11:00Z")), True),
        (EntryFilter(updated_since=T("2023-09-14T00:00Z")), False),
        (EntryFilter(location=(7,)), True),
        (EntryFilter(location=(99,)), True),  # Moscow might lie inside 99: deliver rather than miss
        (EntryFilter(q="talks"), True),
        (EntryFilter(blog=(2,), q="talks"), False),
        (
            EntryFilter(
                or_=(EntryFilter(blog=(2,)), EntryFilter(actor=(5,))),
            ),
            True,
        ),
        (EntryFilter(not_=EntryFilter(actor=(5,))), False),
        (EntryFilter(not_=EntryFilter(q="talks")), True),
    ],
)
def test_a_deleted_entry_is_judged_on_its_last_state(filter: EntryFilter, delivered: bool) -> None:
    assert tombstone_may_match(filter, LAST_STATE) is delivered


async def test_a_subscriber_cut_off_for_lagging_resumes_without_loss(db_dsn: str) -> None:
    pool = await create_pool(db_dsn, min_size=1, max_size=4)
    hub = Hub(db_dsn, pool, queue_size=5, poll_interval=0.5)
    await hub.start()
    conn = await connect(db_dsn)
    try:
        moment = datetime.fromisoformat("2023-09-13T10:00Z")
        await writes.create_blog(conn, writes.BlogCreate(slug="day-1", title="Day 1", published_at=moment))
        got: list[int] = []

        async def lagging() -> None:
            async for change in follow(hub, EntryFilter(), None, 0.2):
                if change is not None:
                    got.append(change.seq)
                    await asyncio.sleep(0.05)  # reads slower than entries are published

        reader = asyncio.create_task(lagging())
        await asyncio.sleep(0.05)
        async with conn.transaction():  # one commit, 30 changes: one batch, more than the queue holds
            for n in range(30):
                await writes.create_entry(
                    conn, writes.EntryCreate(blog="day-1", published_at=moment, headline=f"E{n}", actors=[])
                )
        await asyncio.wait_for(reader, 5)  # cut off: the stream ended by itself
        assert len(got) < 30
        async for change in follow(hub, EntryFilter(), got[-1] if got else 0, 0.2):
            if change is None:
                break
            got.append(change.seq)
        everything = [r["seq"] for r in await conn.fetch("SELECT seq FROM changes WHERE entity = 'entry' ORDER BY seq")]
        assert got == everything
    finally:
        await conn.close()
        await hub.aclose()
        await pool.close()


async def test_a_graphql_subscription_resumes_after_the_last_seq_it_received(
    two_instances: tuple[str, str], write_token: str
) -> None:
    """Each event carries its change seq; `after:` replays what was missed, then goes on live,
    on another instance too (as when the first one restarts)."""
    a, b = two_instances
    await _catalog(a, _auth(write_token))
    fields = "id headline"
    async with httpx.AsyncClient(base_url=a, headers=_auth(write_token)) as client:
        first = await GraphQLSubscriber(b, write_token, f"subscription {{ entryPublished {{ {fields} }} }}").start()
        for n in range(3):
            assert (await client.post("/v1/entries", json=_entry(n))).status_code == 201
        seen = [m for m in await first.wait_for(3, 5.0) if m["type"] == "next"]
        await first.stop()
        assert [m["payload"]["data"]["entryPublished"]["headline"] for m in seen] == [
            "Update 0",
            "Update 1",
            "Update 2",
        ]
        seqs = [m["payload"]["extensions"]["seq"] for m in seen]
        assert seqs == sorted(set(seqs))
        for n in range(3, 6):  # published while the client is away
            assert (await client.post("/v1/entries", json=_entry(n))).status_code == 201
        query = f"subscription {{ entryPublished(after: {seqs[-1]}) {{ {fields} }} }}"
        second = await GraphQLSubscriber(a, write_token, query).start()
        try:
            for n in range(6, 8):  # and live again
                assert (await client.post("/v1/entries", json=_entry(n))).status_code == 201
            await second.wait_for(5, 10.0)
            await asyncio.sleep(0.3)  # nothing more may come
            got = [m for _, m in second.received]
            assert all(m["type"] == "next" for m in got), got
            assert [m["payload"]["data"]["entryPublished"]["headline"] for m in got] == [
                f"Update {n}" for n in range(3, 8)
            ]
            resumed = [m["payload"]["extensions"]["seq"] for m in got]
            assert resumed == sorted(set(resumed))
            assert resumed[0] > seqs[-1]
            feed = (await client.get("/v1/changes", params={"after": 0, "limit": 200})).json()["data"]
            created = {str(c["id"]): c["seq"] for c in feed if c["entity"] == "entry" and c["op"] == "create"}
            for m in seen + got:  # each event's seq is its own change's, as in the feed
                event = m["payload"]
                database_id = base64.b64decode(event["data"]["entryPublished"]["id"]).decode().split(":")[1]
                assert event["extensions"]["seq"] == created[database_id]
        finally:
            await second.stop()


async def test_a_deletes_subscription_resumes_after_the_last_seq_too(
    two_instances: tuple[str, str], write_token: str
) -> None:
    """entryDeleted takes the same `after:`: deletes made while the client was away come first."""
    a, b = two_instances
    await _catalog(a, _auth(write_token))
    async with httpx.AsyncClient(base_url=a, headers=_auth(write_token)) as client:
        ids = []
        for n in range(4):
            response = await client.post("/v1/entries", json=_entry(n))
            assert response.status_code == 201
            ids.append(response.json()["id"])
        since = (await client.get("/v1/changes", params={"after": 0, "limit": 200})).json()["page"]["next_after"]
        for entry_id in ids[:2]:  # deleted while no one listens
            assert (await client.delete(f"/v1/entries/{entry_id}")).status_code == 204
        query = f"subscription {{ entryDeleted(after: {since}) {{ databaseId headline }} }}"
        subscriber = await GraphQLSubscriber(b, write_token, query).start()
        try:
            assert (await client.delete(f"/v1/entries/{ids[2]}")).status_code == 204  # and live
            await subscriber.wait_for(3, 10.0)
            await asyncio.sleep(0.3)  # nothing more may come
            got = [m for _, m in subscriber.received]
            assert [m["payload"]["data"]["entryDeleted"]["databaseId"] for m in got] == ids[:3]
            seqs = [m["payload"]["extensions"]["seq"] for m in got]
            assert seqs == sorted(set(seqs))
            assert seqs[0] > since
        finally:
            await subscriber.stop()
