"""Read-your-writes over a real standby (api/routing.py): writes answer Sitrep-Seq, reads that
send it back see the write (from the replica when it has replayed it), a frozen replica is
answered by the primary without a 5xx nor opening the primary's circuit, and bad values of
Sitrep-Min-Seq / min_seq are refused naming them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from db.replicas import Replica
from tests.standby import SECRET, Replicated, entry, replicated

__all__ = ["replicated"]

CREATE = "mutation($input: CreateEntryInput!) { createEntry(input: $input) { databaseId } }"
INPUT = {"blog": "day-1", "publishedAt": "2023-09-13T10:00:00Z", "headline": "By mutation", "body": ["x"]}
GET_ENTRY = "query($id: ID!) { entry(id: $id) { headline } }"


@pytest.fixture
async def routed(replicated: Replicated) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = Settings(
        secret=SECRET,
        anonymous_rate=100_000,
        replica_urls=(replicated.replica_dsn,),
        replica_wait=2.0,  # generous on a busy machine: these tests want the replica to answer
        replica_max_lag=30.0,
    )
    async with AsyncTestClient(create_app(settings, replicated.dsn)) as client:
        yield client


def _replica(client: AsyncTestClient[Litestar]) -> Replica:
    found: Replica = client.app.state.replicas.replicas[0]
    return found


async def _until(condition: Any, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.05)


async def test_a_read_sending_the_write_seq_sees_the_write_on_the_replica(
    routed: AsyncTestClient[Litestar], replicated: Replicated
) -> None:
    replica = _replica(routed)
    made = await routed.post("/v1/entries", json=entry("Seen on the replica"), headers=replicated.writer)
    assert made.status_code == 201, made.text
    seq = int(made.headers["sitrep-seq"])
    assert seq > 0
    before = replica.reads
    one = await routed.get(f"/v1/entries/{made.json()['id']}", headers={"Sitrep-Min-Seq": str(seq)})
    assert one.status_code == 200
    assert one.json()["headline"] == "Seen on the replica"
    assert int(one.headers["sitrep-seq"]) >= seq
    assert replica.reads == before + 1  # the replica answered it
    listed = await routed.get("/v1/entries", params={"limit": 200}, headers={"Sitrep-Min-Seq": str(seq)})
    assert made.json()["id"] in [e["id"] for e in listed.json()["data"]]
    assert "Sitrep-Min-Seq" in listed.headers["vary"]  # the answer depends on it: caches must key on it
    # an edit, read back at once
    edited = await routed.patch(
        f"/v1/entries/{made.json()['id']}", json={"headline": "Edited"}, headers=replicated.writer
    )
    again = await routed.get(
        f"/v1/entries/{made.json()['id']}", headers={"Sitrep-Min-Seq": edited.headers["sitrep-seq"]}
    )
    assert again.json()["headline"] == "Edited"


async def test_a_mutation_answers_its_seq_and_a_get_query_takes_min_seq(
    routed: AsyncTestClient[Litestar], replicated: Replicated
) -> None:
    replica = _replica(routed)
    made = await routed.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": INPUT}},
        headers=replicated.writer,
    )
    body = made.json()
    assert "errors" not in body, body
    seq = body["extensions"]["seq"]
    assert seq > 0
    assert made.headers["sitrep-seq"] == str(seq)
    entry_id = body["data"]["createEntry"]["databaseId"]
    before = replica.reads
    read = await routed.get(
        "/graphql", params={"query": GET_ENTRY, "variables": f'{{"id": "{entry_id}"}}', "min_seq": str(seq)}
    )
    assert read.json()["data"]["entry"] == {"headline": "By mutation"}, read.text
    assert replica.reads == before + 1


async def test_a_replica_that_has_not_replayed_the_seq_leaves_the_read_to_the_primary(
    routed: AsyncTestClient[Litestar], replicated: Replicated
) -> None:
    replica = _replica(routed)
    standby = await asyncpg.connect(replicated.replica_dsn)
    try:
        await standby.execute("SELECT pg_wal_replay_pause()")
        made = await routed.post("/v1/entries", json=entry("Only on the primary"), headers=replicated.writer)
        before = replica.reads
        one = await routed.get(
            f"/v1/entries/{made.json()['id']}", headers={"Sitrep-Min-Seq": made.headers["sitrep-seq"]}
        )
        assert one.status_code == 200
        assert one.json()["headline"] == "Only on the primary"
        assert replica.reads == before
        ready = (await routed.get("/ready")).json()
        assert ready["status"] == "ready"
        assert ready["replicas"][0]["replayed_seq"] < int(made.headers["sitrep-seq"])
    finally:
        await standby.execute("SELECT pg_wal_replay_resume()")
        await standby.close()


async def test_a_frozen_replica_is_answered_by_the_primary_and_leaves_its_circuit_closed(
    routed: AsyncTestClient[Litestar], replicated: Replicated
) -> None:
    replica = _replica(routed)
    made = await routed.post("/v1/entries", json=entry("Read while frozen"), headers=replicated.writer)
    path = f"/v1/entries/{made.json()['id']}"
    assert (await routed.get(path, headers={"Sitrep-Min-Seq": made.headers["sitrep-seq"]})).status_code == 200
    assert replica.reads > 0  # it holds a connection to the replica now
    replicated.standby.freeze()
    try:
        for _ in range(3):
            answer = await routed.get(path)
            assert answer.status_code == 200, answer.text
            assert answer.json()["headline"] == "Read while frozen"
            graph = await routed.get("/graphql", params={"query": "{ blogs(first: 1) { nodes { slug } } }"})
            assert graph.status_code == 200, graph.text
            assert "errors" not in graph.json(), graph.text
        assert not replica.in_rotation
        assert routed.app.state.pool.circuit.opened == 0  # the primary's circuit never opened
    finally:
        replicated.standby.thaw()
    await _until(lambda: replica.in_rotation)


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "99999999999999999999", ""])
async def test_a_bad_min_seq_is_a_problem_naming_it(client: AsyncTestClient[Litestar], value: str) -> None:
    rest = await client.get("/v1/entries", headers={"Sitrep-Min-Seq": value})
    assert rest.status_code == 400
    assert rest.headers["content-type"].startswith("application/problem+json")
    assert rest.json()["errors"][0]["name"] == "Sitrep-Min-Seq"
    graph = await client.get("/graphql", params={"query": "{ blogs { nodes { slug } } }", "min_seq": value})
    assert graph.status_code == 400
    assert graph.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "min_seq" in graph.json()["errors"][0]["message"]


async def test_without_replicas_writes_and_reads_still_answer_their_seq(client: AsyncTestClient[Litestar]) -> None:
    read = await client.get("/v1/blogs", headers={"Sitrep-Min-Seq": "0"})
    assert read.status_code == 200
    assert int(read.headers["sitrep-seq"]) >= 0
