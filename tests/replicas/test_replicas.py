"""The real thing on this machine: a primary and a streaming standby made with pg_basebackup -R,
Redis and two `sitrep serve` instances, each on a spare port, started here and torn down after.

Both instances reach the primary through PgBouncer in transaction mode (SITREP_PGBOUNCER,
tests/bouncer.py), LISTEN and migrations on DATABASE_DIRECT_URL. Instance `a` writes (primary
only); instance `b` reads through the standby
(DATABASE_REPLICA_URLS, a 1 s max lag). Checked: 500 write-then-read pairs across the two
instances with Sitrep-Min-Seq and not one stale answer; replay paused with pg_wal_replay_pause:
the replica leaves rotation, reads stay right, it comes back after pg_wal_replay_resume; the
standby stopped and restarted under a bounded read load: no 5xx; SSE and a GraphQL subscription
on `b`: every change written on `a` exactly once, in seq order, within 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from tests.bouncer import PgBouncer
from tests.faults.harness import Instance, Postgres, Services, services
from tests.standby import SECRET, _prepare, entry

pytestmark = pytest.mark.slow
PAIRS = 500
Received = list[tuple[int, int, float]]
WORKERS = 5


@dataclass
class Deployment:
    env: Services
    standby: Postgres
    writer: Instance  # a: the primary alone
    reader: Instance  # b: the primary and the standby
    key: dict[str, str]


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    with services() as env, contextlib.ExitStack() as stack:
        env.postgres.init()
        env.postgres.allow_replication()
        env.postgres.start()
        env.redis.start()
        bouncer = stack.enter_context(PgBouncer(env.postgres.dsn, pool_mode="transaction", pool_size=4))
        settings = {
            "DATABASE_URL": bouncer.dsn,
            "DATABASE_DIRECT_URL": env.postgres.dsn,
            "SITREP_PGBOUNCER": "transaction",
            "REDIS_URL": env.redis.url,
            "SITREP_SECRET": SECRET,
            "SITREP_KEY_PEPPER": "",
            "SITREP_LOAD_SAMPLE": "false",
            "SITREP_ANONYMOUS_RATE": "1000000",
            "SITREP_HEARTBEAT_SECONDS": "1",
            "SITREP_POOL_MAX": "8",
        }
        a = env.add_instance("a", settings)
        a.start()  # migrates the primary
        token = asyncio.run(_prepare(env.postgres.dsn))
        standby = env.add_standby()
        standby.start()
        b = env.add_instance(
            "b",
            {
                **settings,
                "DATABASE_REPLICA_URLS": standby.dsn,
                "SITREP_REPLICA_MAX_LAG": "1",
                "SITREP_REPLICA_WAIT": "0.05",
            },
        )
        b.start()
        deployment = Deployment(env, standby, a, b, {"Authorization": f"Bearer {token}"})
        asyncio.run(_until_rotation(deployment, True))
        yield deployment


async def _replica(client: httpx.AsyncClient, instance: Instance) -> dict[str, Any]:
    ready = (await client.get(f"{instance.base}/ready")).json()
    found: dict[str, Any] = ready["replicas"][0]
    return found


async def _until_rotation(d: Deployment, wanted: bool, within: float = 20) -> float:
    """Wait until b's replica is (or is not) in rotation; the seconds it took."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=5) as client:
        while (await _replica(client, d.reader))["in_rotation"] is not wanted:
            assert time.monotonic() - started < within, f"the replica's in_rotation did not become {wanted}"
            await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _metric(client: httpx.AsyncClient, instance: Instance, name: str) -> float:
    text = (await client.get(f"{instance.base}/metrics")).text
    found = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


@dataclass
class Pairs:
    done: int = 0
    stale: list[str] = field(default_factory=list)


async def _write_then_read(client: httpx.AsyncClient, d: Deployment, pairs: Pairs, n: int) -> None:
    """Write on a, read the write back on b with the seq a answered."""
    headline = f"Pair {n} {uuid.uuid4().hex[:6]}"
    made = await client.post(f"{d.writer.base}/v1/entries", json=entry(headline), headers=d.key)
    assert made.status_code == 201, made.text
    path = f"/v1/entries/{made.json()['id']}"
    seq = made.headers["sitrep-seq"]
    if n % 5 == 0:  # an edit, read back
        headline = f"Edited {headline}"
        edited = await client.patch(f"{d.writer.base}{path}", json={"headline": headline}, headers=d.key)
        assert edited.status_code == 200, edited.text
        seq = edited.headers["sitrep-seq"]
    read = await client.get(f"{d.reader.base}{path}", headers={"Sitrep-Min-Seq": seq})
    if read.status_code != 200 or read.json()["headline"] != headline:
        pairs.stale.append(f"{path} after seq {seq}: {read.status_code} {read.text[:100]}")
    elif int(read.headers["sitrep-seq"]) < int(seq):
        pairs.stale.append(f"{path}: answered Sitrep-Seq {read.headers['sitrep-seq']} < {seq}")
    pairs.done += 1


def test_500_write_then_read_pairs_across_instances_are_never_stale(deployment: Deployment) -> None:
    async def scenario() -> tuple[Pairs, float]:
        pairs = Pairs()
        async with httpx.AsyncClient(timeout=10) as client:
            before = await _metric(client, deployment.reader, "sitrep_db_replica_reads")

            async def worker(w: int) -> None:
                for n in range(w, PAIRS, WORKERS):
                    await _write_then_read(client, deployment, pairs, n)

            await asyncio.gather(*(worker(w) for w in range(WORKERS)))
            served = await _metric(client, deployment.reader, "sitrep_db_replica_reads") - before
        return pairs, served

    pairs, served = asyncio.run(scenario())
    assert pairs.done == PAIRS
    assert pairs.stale == []
    assert served > 0  # the replica answered some of them (the rest waited out SITREP_REPLICA_WAIT)
    print(f"\nreplicas: {PAIRS} write-then-read pairs, 0 stale, {served:.0f} reads answered by the replica")


def test_paused_replay_takes_the_replica_out_and_reads_stay_right(deployment: Deployment) -> None:
    async def scenario() -> tuple[Pairs, float, float]:
        pairs = Pairs()
        standby = await asyncpg.connect(deployment.standby.dsn)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                await standby.execute("SELECT pg_wal_replay_pause()")
                stop = asyncio.Event()

                async def writes() -> None:
                    n = 0
                    while not stop.is_set():
                        await _write_then_read(client, deployment, pairs, n)
                        n += 1
                        await asyncio.sleep(0.05)

                load = asyncio.create_task(writes())
                try:
                    left = await _until_rotation(deployment, False)
                    lagging = await _replica(client, deployment.reader)
                    assert lagging["state"] == "behind"
                    assert lagging["lag_bytes"] > 0
                    assert lagging["lag_seconds"] >= 1  # over 1 s, shown rounded to the millisecond
                    await asyncio.sleep(0.5)  # reads go on without it
                    await standby.execute("SELECT pg_wal_replay_resume()")
                    back = await _until_rotation(deployment, True)
                    await asyncio.sleep(0.5)  # and with it again
                finally:
                    stop.set()
                    await load
        finally:
            with contextlib.suppress(Exception):
                await standby.execute("SELECT pg_wal_replay_resume()")
            await standby.close()
        return pairs, left, back

    pairs, left, back = asyncio.run(scenario())
    assert pairs.done > 0
    assert pairs.stale == []
    print(f"\nreplicas: replay paused: out of rotation after {left:.1f} s, back {back:.1f} s after resume")


def test_standby_stopped_and_restarted_under_load_no_5xx(deployment: Deployment) -> None:
    paths = ["/v1/entries?limit=5", "/v1/blogs", "/graphql?query=%7Bblogs%7Bnodes%7Bslug%7D%7D%7D"]

    async def scenario() -> tuple[dict[int, int], list[str], float]:
        statuses: dict[int, int] = {}
        errors: list[str] = []
        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=10) as client:

            async def reader(n: int) -> None:
                while not stop.is_set():
                    path = paths[n % len(paths)]
                    n += 1
                    response = await client.get(f"{deployment.reader.base}{path}")
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code != 200 or "errors" in response.text[:20]:
                        errors.append(f"{path}: {response.status_code} {response.text[:120]}")
                    await asyncio.sleep(0.01)

            load = [asyncio.create_task(reader(n)) for n in range(4)]
            try:
                await asyncio.sleep(1)
                await asyncio.to_thread(deployment.standby.stop, "fast")
                await _until_rotation(deployment, False, within=5)
                await asyncio.sleep(1)
                await asyncio.to_thread(deployment.standby.start)
                back = await _until_rotation(deployment, True)
                before = await _metric(client, deployment.reader, "sitrep_db_replica_reads")
                await asyncio.sleep(1)
                served = await _metric(client, deployment.reader, "sitrep_db_replica_reads") - before
            finally:
                stop.set()
                await asyncio.gather(*load)
        assert served > 0  # back in rotation means answering again
        return statuses, errors, back

    statuses, errors, back = asyncio.run(scenario())
    assert errors == []
    assert set(statuses) == {200}
    print(f"\nreplicas: standby restarted under load: {sum(statuses.values())} reads, all 200; back in {back:.1f} s")


def test_sse_and_subscriptions_on_the_reading_instance_deliver_every_change_once_in_order_within_a_second(
    deployment: Deployment,
) -> None:
    count = 40

    async def scenario() -> tuple[Received, Received, dict[int, float], float]:
        sse: Received = []  # (seq, entry id, arrival)
        subscribed: Received = []  # (0, entry id, arrival): gql gives the data, ids grow with seq here
        written: dict[int, float] = {}  # entry id -> when a answered the write
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as client:
            log_reads = await _metric(client, deployment.reader, "sitrep_db_replica_log_reads")

            async def listen() -> None:
                async with client.stream(
                    "GET", f"{deployment.reader.base}/v1/stream/entries", headers={"Accept": "text/event-stream"}
                ) as response:
                    assert response.status_code == 200
                    seq: int | None = None
                    async for line in response.aiter_lines():
                        if line.startswith("id:"):
                            seq = int(line[3:].strip())
                        elif line.startswith("data:") and seq is not None:
                            sse.append((seq, json.loads(line[5:])["id"], time.monotonic()))
                        elif line == "":
                            seq = None

            async def subscribe() -> None:
                url = deployment.reader.base.replace("http://", "ws://") + "/graphql"
                transport = WebsocketsTransport(url=url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])
                async with Client(transport=transport) as session:
                    async for result in session.subscribe(gql("subscription { entryPublished { databaseId } }")):
                        subscribed.append((0, result["entryPublished"]["databaseId"], time.monotonic()))

            tasks = [asyncio.create_task(listen()), asyncio.create_task(subscribe())]
            try:
                # probes until both listeners are live; what counts is written after the last probe
                deadline = time.monotonic() + 20
                probe = 0
                while not (sse and subscribed):
                    assert time.monotonic() < deadline, "the SSE stream or the subscription never started"
                    made = await client.post(
                        f"{deployment.writer.base}/v1/entries", json=entry("Probe"), headers=deployment.key
                    )
                    probe = made.json()["id"]
                    await asyncio.sleep(0.2)
                for n in range(count):
                    made = await client.post(
                        f"{deployment.writer.base}/v1/entries", json=entry(f"Streamed {n}"), headers=deployment.key
                    )
                    written[made.json()["id"]] = time.monotonic()
                    await asyncio.sleep(0.05)
                last = max(written)
                deadline = time.monotonic() + 10
                while not (any(e[1] >= last for e in sse) and any(e[1] >= last for e in subscribed)):
                    assert time.monotonic() < deadline, "not every change arrived within 10 s"
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)  # a duplicate would show up now
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            log_reads = await _metric(client, deployment.reader, "sitrep_db_replica_log_reads") - log_reads
        after_probes = [e for e in sse if e[1] > probe], [e for e in subscribed if e[1] > probe]
        return after_probes[0], after_probes[1], written, log_reads

    sse, subscribed, written, log_reads = asyncio.run(scenario())
    for name, events in (("SSE", sse), ("subscription", subscribed)):
        ids = [entry_id for _, entry_id, _ in events]
        assert sorted(ids) == sorted(written), name  # every change, once
        assert ids == sorted(ids), name  # in order (these entries were written one after another)
        delays = [arrival - written[entry_id] for _, entry_id, arrival in events]
        assert max(delays) < 1.0, (name, delays)
        print(f"\nreplicas: {name} on b: {len(events)} changes, once, in order, max delay {max(delays) * 1000:.0f} ms")
    seqs = [seq for seq, _, _ in sse]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert log_reads > 0  # b's hub read the log from the replica
