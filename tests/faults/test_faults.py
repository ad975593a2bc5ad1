"""Faults under load: two sitrep instances sharing their own PostgreSQL and Redis.

One run (the module's `run` fixture, about a minute) starts a PostgreSQL cluster, a
redis-server and two instances (`sitrep serve`) on spare ports, puts them under load
(readers, a writer retrying with Idempotency-Key, an SSE and a GraphQL subscriber that
resume after every disconnect, and during the Redis faults a client hammering a key with a
low rate), and injects one fault after another:

    pg-restart-N    pg_ctl restart -m fast (three times)
    pg-crash        pg_ctl stop -m immediate, 1 s, start (crash-style)
    pg-frozen       SIGSTOP of the postmaster and every backend for 3 s, then SIGCONT
    redis-restart   redis-server stopped, 2 s, started again (empty)
    redis-frozen    SIGSTOP of redis-server for 2 s, then SIGCONT
    sigterm         SIGTERM to instance a, which is started again once it has exited

Each test below is one check over what the run recorded; the figures are printed at the end
of the pytest run (tests/faults/conftest.py), whether the checks pass or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import websockets

from db import keys as keydb
from tests.faults import report
from tests.faults.harness import SECRET, Instance, Services, services

pytestmark = [pytest.mark.faults, pytest.mark.slow]

READERS = 8  # as in the reproduction of the 500s around a restart
RESTARTS = 3  # pg_ctl restart -m fast, this many times (the race it exposes is narrow)
SETTLE = 2.0  # seconds of steady load after each fault's recovery
LIMITED_RATE = 60  # requests a minute of the key the rate-limit client hammers
HANG = 1.0  # an answer (503 or 200) within this long of a request sent during a fault
RECOVERY = 1.0  # the first 200 within this long of the fault's end
REQUEST_TIMEOUT = 15.0
RESUME_EVERY = 4.0  # seconds: the subscribers also drop their stream this often, to resume more often


@dataclass
class Sample:
    kind: str  # read, write, sse, limited
    instance: str
    start: float
    end: float
    status: int  # 0: connection refused; -1: another transport error
    retry_after: bool
    error: str = ""


@dataclass
class Fault:
    name: str
    start: float
    recovered: float = 0.0
    end: float = 0.0
    target: str = ""  # the instance a fault stops, if any


@dataclass
class LimitPhase:
    name: str
    rate: int
    allowed: int = 0
    refused: int = 0
    elapsed: float = 0.0


@dataclass
class Run:
    instances: list[Instance]
    samples: list[Sample] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    acknowledged: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> entry id
    attempted: set[str] = field(default_factory=set)
    written: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> entries in the database
    baseline: int = 0  # the last seq before the load started
    expected: list[int] = field(default_factory=list)  # entry changes after the baseline, from the database
    feed: list[int] = field(default_factory=list)  # every seq /v1/changes delivered
    logged: list[int] = field(default_factory=list)  # every seq in the changes table
    created: dict[int, int] = field(default_factory=dict)  # entry id -> its create seq
    sse: list[int] = field(default_factory=list)
    sse_resumes: int = 0
    graphql: list[int] = field(default_factory=list)
    graphql_resumes: int = 0
    limits: list[LimitPhase] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)  # "instance: the log line before each traceback"


# ---- the load -----------------------------------------------------------------------------------


class Load:
    def __init__(self, run: Run, read_token: str, write_token: str) -> None:
        self.run = run
        self.read = {"X-API-Key": read_token}
        self.write = {"X-API-Key": write_token}
        self.read_token = read_token
        # a connection per request: a transport error is the server's doing, never a stale keep-alive
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_keepalive_connections=0, max_connections=100), timeout=REQUEST_TIMEOUT
        )
        self.stop = asyncio.Event()  # readers and writer
        self.stop_subscribers = asyncio.Event()

    async def request(
        self, kind: str, instance: Instance, method: str, path: str, **kwargs: Any
    ) -> tuple[Sample, httpx.Response | None]:
        start = time.monotonic()
        response: httpx.Response | None = None
        try:
            response = await self.client.request(method, instance.base + path, **kwargs)
            status, error = response.status_code, ""
        except httpx.ConnectError as exc:
            status, error = 0, type(exc).__name__
        except httpx.TransportError as exc:
            status, error = -1, f"{type(exc).__name__}: {exc}"[:200]
        retry = response is not None and "retry-after" in response.headers
        if response is not None and response.status_code >= 500:
            error = response.text[:200]
        sample = Sample(kind, instance.name, start, time.monotonic(), status, retry, error)
        self.run.samples.append(sample)
        return sample, response

    async def reader(self, n: int) -> None:
        while not self.stop.is_set():
            instance = self.run.instances[n % 2]
            n += 1
            path = "/v1/entries?limit=5" if n % 3 else "/v1/changes?limit=5"
            await self.request("read", instance, "GET", path, headers=self.read)
            await asyncio.sleep(0.03)

    async def writer(self) -> None:
        n = 0
        while not self.stop.is_set():
            key = f"fault-{n:05d}-{uuid.uuid4().hex[:8]}"
            self.run.attempted.add(key)
            body = {
                "blog": "fault-day",
                "published_at": "2023-09-13T10:00:00Z",
                "headline": f"Fault write {key}",
                "body": [f"Paragraph of {key}."],
                "actors": [{"actor": "fault-actor", "role": "speaker"}],
                "locations": [],
                "sources": [],
            }
            deadline = time.monotonic() + 30
            attempt = 0
            while time.monotonic() < deadline:
                instance = self.run.instances[(n + attempt) % 2]
                attempt += 1
                sample, response = await self.request(
                    "write", instance, "POST", "/v1/entries", json=body, headers={**self.write, "Idempotency-Key": key}
                )
                if response is not None and sample.status in (200, 201):
                    self.run.acknowledged[key] = int(response.json()["id"])
                    break
                await asyncio.sleep(0.1)
            n += 1
            await asyncio.sleep(0.05)

    async def sse_subscriber(self) -> None:
        """Reads the entry stream; after any end or error, resumes on the other instance with Last-Event-ID."""
        last, n = self.run.baseline, 0
        while not self.stop_subscribers.is_set():
            instance = self.run.instances[n % 2]
            n += 1
            start = time.monotonic()
            try:
                headers = {**self.read, "Last-Event-ID": str(last), "Accept": "text/event-stream"}
                timeout = httpx.Timeout(5.0)
                async with self.client.stream(
                    "GET", instance.base + "/v1/stream/entries", headers=headers, timeout=timeout
                ) as response:
                    retry = "retry-after" in response.headers
                    error = (await response.aread()).decode()[:200] if response.status_code != 200 else ""
                    self.run.samples.append(
                        Sample("sse", instance.name, start, time.monotonic(), response.status_code, retry, error)
                    )
                    if response.status_code == 200:
                        event: int | None = None
                        async for line in response.aiter_lines():
                            if line.startswith("id:"):
                                event = int(line[3:].strip())
                            elif line == "" and event is not None:
                                self.run.sse.append(event)
                                last, event = event, None
                            if self.stop_subscribers.is_set():
                                return
                            if time.monotonic() - start > RESUME_EVERY and event is None:
                                break  # between events: resume elsewhere from the last one
            except httpx.ConnectError:
                pass
            except httpx.TransportError:
                pass
            self.run.sse_resumes += 1
            await asyncio.sleep(0.2)

    async def graphql_subscriber(self) -> None:
        """entryPublished over graphql-transport-ws; after any close, resubscribes with after: last seq."""
        last, n = self.run.baseline, 0
        protocol = [websockets.Subprotocol("graphql-transport-ws")]
        while not self.stop_subscribers.is_set():
            instance = self.run.instances[n % 2]
            n += 1
            url = instance.base.replace("http://", "ws://") + "/graphql"
            with contextlib.suppress(OSError, websockets.WebSocketException, TimeoutError, ValueError, KeyError):
                async with websockets.connect(url, subprotocols=protocol, open_timeout=5, close_timeout=1) as ws:
                    init = {"type": "connection_init", "payload": {"X-API-Key": self.read_token}}
                    await ws.send(msgspec.json.encode(init).decode())
                    if msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5))["type"] != "connection_ack":
                        continue
                    query = f"subscription {{ entryPublished(after: {last}) {{ databaseId }} }}"
                    await ws.send(
                        msgspec.json.encode({"id": "1", "type": "subscribe", "payload": {"query": query}}).decode()
                    )
                    opened = time.monotonic()
                    while not self.stop_subscribers.is_set() and time.monotonic() - opened < RESUME_EVERY:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 0.5)
                        except TimeoutError:
                            continue
                        message = msgspec.json.decode(raw)
                        if message.get("type") != "next":
                            break
                        seq = int(message["payload"]["extensions"]["seq"])
                        self.run.graphql.append(seq)
                        last = seq
            self.run.graphql_resumes += 1
            await asyncio.sleep(0.2)

    async def limited(self, phase: LimitPhase, token: str, stop: asyncio.Event) -> None:
        """Hammer one key (alternating instances): how many it was allowed in the phase."""
        start, n = time.monotonic(), 0
        while not stop.is_set():
            sample, _ = await self.request(
                "limited", self.run.instances[n % 2], "GET", "/v1/sources?limit=1", headers={"X-API-Key": token}
            )
            n += 1
            phase.allowed += sample.status == 200
            phase.refused += sample.status == 429
            await asyncio.sleep(0.02)
        phase.elapsed = time.monotonic() - start


# ---- the run ------------------------------------------------------------------------------------


async def _keys(dsn: str, count: int) -> tuple[str, str, list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        _, read = await keydb.create_key(conn, SECRET, name="faults-read", scopes=["read"], rate=1_000_000)
        _, write = await keydb.create_key(conn, SECRET, name="faults-write", scopes=["read", "write"], rate=1_000_000)
        limited = [
            (await keydb.create_key(conn, SECRET, name=f"faults-limited-{i}", scopes=["read"], rate=LIMITED_RATE))[1]
            for i in range(count)
        ]
    finally:
        await conn.close()
    return read, write, limited


async def _seed(base: str, write: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": write}, timeout=30) as client:
        for path, body in (
            ("/v1/blogs", {"slug": "fault-day", "title": "Fault day", "published_at": "2023-09-13T00:00:00Z"}),
            ("/v1/actors", {"slug": "fault-actor", "name": "Fault Actor", "kind": "person", "country": "UA"}),
        ):
            response = await client.post(path, json=body)
            assert response.status_code == 201, response.text


async def _fault(
    run: Run,
    name: str,
    inject: Callable[[], None],
    recover: Callable[[], None],
    down_for: float,
    target: str = "",
) -> None:
    fault = Fault(name, time.monotonic(), target=target)
    run.faults.append(fault)
    try:
        await asyncio.to_thread(inject)
        await asyncio.sleep(down_for)
    finally:
        await asyncio.to_thread(recover)  # SIGCONT and restarts happen whatever went wrong
    fault.recovered = time.monotonic()
    await asyncio.sleep(SETTLE)
    fault.end = time.monotonic()


async def _with_limits(load: Load, run: Run, name: str, token: str, work: Awaitable[None]) -> None:
    phase = LimitPhase(name, LIMITED_RATE)
    run.limits.append(phase)
    stop = asyncio.Event()
    task = asyncio.create_task(load.limited(phase, token, stop))
    try:
        await asyncio.sleep(1.0)  # the key's bucket in use before the fault
        await work
    finally:
        stop.set()
        await task


async def _scenario(env: Services, run: Run) -> None:
    pg, redis = env.postgres, env.redis
    a, b = run.instances
    read, write, limited = await _keys(pg.dsn, 2)
    await _seed(a.base, write)
    conn = await asyncpg.connect(pg.dsn)
    try:
        run.baseline = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
    finally:
        await conn.close()

    load = Load(run, read, write)
    tasks = [asyncio.create_task(load.reader(i)) for i in range(READERS)]
    tasks.append(asyncio.create_task(load.writer()))
    subscribers = [asyncio.create_task(load.sse_subscriber()), asyncio.create_task(load.graphql_subscriber())]
    try:
        await asyncio.sleep(2.0)  # steady load first
        for n in range(RESTARTS):
            await _fault(run, f"pg-restart-{n + 1}", lambda: pg.restart("fast"), lambda: None, 0)
        await _fault(run, "pg-crash", lambda: pg.stop("immediate"), pg.start, 1.0)
        await _fault(run, "pg-frozen", pg.freeze, pg.thaw, 3.0)
        await _with_limits(
            load, run, "redis-restart", limited[0], _fault(run, "redis-restart", redis.stop, redis.start, 2.0)
        )
        await _with_limits(
            load, run, "redis-frozen", limited[1], _fault(run, "redis-frozen", redis.freeze, redis.thaw, 2.0)
        )

        def stop_a() -> None:
            run.exit_codes.append(a.terminate())

        await _fault(run, "sigterm", stop_a, a.start, 0, target=a.name)
    finally:
        load.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    # every acknowledged write is in the log now: wait (bounded) for the subscribers to get there
    conn = await asyncpg.connect(pg.dsn)
    try:
        rows = await conn.fetch(
            "SELECT seq FROM changes WHERE entity = 'entry' AND seq > $1 ORDER BY seq", run.baseline
        )
        run.expected = [r["seq"] for r in rows]
        for _ in range(75):  # 15 s at most
            if set(run.expected) <= set(run.sse) and set(run.expected) <= set(run.graphql):
                break
            await asyncio.sleep(0.2)
        load.stop_subscribers.set()
        for task in subscribers:
            task.cancel()
        await asyncio.gather(*subscribers, return_exceptions=True)
        counts = await conn.fetch(
            "SELECT substr(headline, 13) AS key, count(*) AS n FROM entries"
            " WHERE headline LIKE 'Fault write %' GROUP BY 1"
        )
        run.written = {r["key"]: r["n"] for r in counts}
        run.logged = [r["seq"] for r in await conn.fetch("SELECT seq FROM changes ORDER BY seq")]
        creates = await conn.fetch("SELECT entity_id, seq FROM changes WHERE entity = 'entry' AND op = 'create'")
        run.created = {r["entity_id"]: r["seq"] for r in creates}
    finally:
        await conn.close()
    # the change feed, walked from the start on instance b
    after = 0
    async with httpx.AsyncClient(base_url=b.base, headers={"X-API-Key": read}, timeout=30) as client:
        while True:
            page = (await client.get("/v1/changes", params={"after": after, "limit": 200})).json()
            run.feed += [c["seq"] for c in page["data"]]
            if not page["data"]:
                break
            after = page["page"]["next_after"]
    await load.client.aclose()


# asyncpg's pool logs each failed attempt to reopen its minimum of connections with a traceback
_ASYNCPG_FLOOR = "asyncpg.pool - pool - Failed to restore the pool connection floor"
_RECORD = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) - ")  # the instances' log format


def _tracebacks(instance: Instance) -> list[str]:
    """The first line of each log record that is an error or carries a traceback."""
    try:
        lines = instance.log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found: list[str] = []
    record, reported = "", True
    for line in lines:
        if _RECORD.match(line):
            record, reported = line, False
            if line.startswith(("ERROR", "CRITICAL")):
                found.append(f"{instance.name}: {line[:200]}")
                reported = True
        elif "Traceback (most recent call last)" in line and not reported:
            found.append(f"{instance.name}: {record[:200] or line[:200]}")
            reported = True
    return found


def _log_errors(instance: Instance) -> list[str]:
    try:
        text = instance.log.read_text(errors="replace")
    except OSError:
        return []
    lines = text.splitlines()
    # a traceback's message is on the line before it; its exception on the first unindented line after it
    found = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            after = next((x for x in lines[i + 1 :] if x and not x.startswith(" ")), "")
            found.append(f"{instance.name}: {lines[i - 1][:120] if i else ''} | {after[:120]}")
    return found[:20]


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    with services() as env:
        env.postgres.init()
        env.postgres.start()
        env.redis.start()
        settings = {
            "DATABASE_URL": env.postgres.dsn,
            "REDIS_URL": env.redis.url,
            "SITREP_SECRET": SECRET,
            "SITREP_KEY_PEPPER": "",
            "SITREP_LOAD_SAMPLE": "false",
            "SITREP_ANONYMOUS_RATE": "100000",
            "SITREP_HEARTBEAT_SECONDS": "1",
            "SITREP_POOL_MAX": "8",
        }
        a = env.add_instance("a", settings)
        b = env.add_instance("b", settings)
        a.start()
        b.start()
        result = Run(instances=[a, b])
        started = time.monotonic()
        try:
            asyncio.run(asyncio.wait_for(_scenario(env, result), 180))
        finally:
            for instance in (a, b):
                result.log_errors += _log_errors(instance)
                result.tracebacks += _tracebacks(instance)
            if any(code not in (0, -15) for code in result.exit_codes):
                result.log_errors += [f"a (log tail after a stuck SIGTERM): {line}" for line in a.log_tail(60)]
            report.record(result, time.monotonic() - started)
        yield result


# ---- the checks ---------------------------------------------------------------------------------


def _in(sample: Sample, start: float, end: float) -> bool:
    return start <= sample.start < end


def _refused_ok(run: Run, sample: Sample) -> bool:
    """Connection refused is expected only from an instance that a fault has stopped."""
    return any(f.target == sample.instance and f.start <= sample.start <= f.recovered for f in run.faults if f.target)


def _during(run: Run, sample: Sample) -> str:
    """Which fault a sample was sent in (from its start to the end of its settling), for a failure's message."""
    found = [f"{f.name} +{sample.start - f.start:.3f} s" for f in run.faults if f.start <= sample.start <= f.end]
    return ", ".join(found) or "no fault"


def test_no_500_ever(run: Run) -> None:
    bad = [s for s in run.samples if s.status >= 500 and s.status != 503]
    broken = [s for s in run.samples if s.status == -1 or (s.status == 0 and not _refused_ok(run, s))]
    assert not bad, f"{len(bad)} answers 5xx other than 503, first: {[(s, _during(run, s)) for s in bad[:3]]}"
    assert not broken, (
        f"{len(broken)} requests failed at the transport level, first: {[(s, _during(run, s)) for s in broken[:3]]}"
    )


def test_no_traceback_in_the_logs_but_asyncpgs_reconnect_warnings(run: Run) -> None:
    """Every failure during the faults is an answer (a 503, a stream that ends cleanly), never an
    exception escaping to uvicorn (an SSE stream whose key check met the database down used to)."""
    unexpected = [line for line in run.tracebacks if _ASYNCPG_FLOOR not in line]
    assert not unexpected, f"{len(unexpected)} tracebacks in the instances' logs, first: {unexpected[:3]}"


def test_errors_are_503_with_retry_after_and_come_within_a_second(run: Run) -> None:
    no_retry = [s for s in run.samples if s.status == 503 and not s.retry_after]
    assert not no_retry, f"{len(no_retry)} 503s without Retry-After, first: {no_retry[:3]}"
    for fault in run.faults:
        during = [s for s in run.samples if _in(s, fault.start, fault.recovered) and s.kind != "sse" and s.status]
        slow = [s for s in during if s.end - s.start > HANG]
        assert not slow, (
            f"{fault.name}: {len(slow)} requests sent during the fault waited over {HANG} s "
            f"(worst {max(s.end - s.start for s in slow):.2f} s, status {[s.status for s in slow[:5]]})"
        )


def first_200_after(run: Run, fault: Fault, instance: str) -> float | None:
    ends = [
        s.end
        for s in run.samples
        if s.instance == instance and s.status == 200 and s.start >= fault.recovered and s.kind != "limited"
    ]
    return min(ends) - fault.recovered if ends else None


def test_first_200_within_a_second_of_recovery(run: Run) -> None:
    for fault in run.faults:
        for instance in ("a", "b"):
            delay = first_200_after(run, fault, instance)
            assert delay is not None, f"{fault.name}: no 200 from {instance} after recovery"
            assert delay <= RECOVERY, f"{fault.name}: first 200 from {instance} {delay:.2f} s after recovery"


def test_no_acknowledged_write_lost_or_duplicated(run: Run) -> None:
    assert len(run.acknowledged) >= 20, "the writer got too few writes through to judge"
    lost = [k for k in run.acknowledged if run.written.get(k, 0) == 0]
    duplicated = {k: n for k, n in run.written.items() if n > 1}
    assert not lost, f"{len(lost)} acknowledged writes are not in the database: {lost[:5]}"
    assert not duplicated, f"written more than once: {list(duplicated.items())[:5]}"
    assert set(run.written) <= run.attempted
    ids = list(run.acknowledged.values())
    assert len(ids) == len(set(ids)), "two keys acknowledged with the same entry"


def test_the_change_feed_is_gap_free(run: Run) -> None:
    assert run.feed == run.logged, "the feed did not deliver exactly the change log, in order"
    feed = set(run.feed)
    missing = [i for i in run.acknowledged.values() if run.created.get(i) not in feed]
    assert not missing, f"acknowledged entries without a create in the feed: {missing[:5]}"


def test_sse_subscribers_get_every_change_after_resuming(run: Run) -> None:
    assert run.sse_resumes >= 3, "the SSE subscriber hardly resumed: the run did not test it"
    assert run.sse == run.expected, (
        f"SSE: {len(run.sse)} events for {len(run.expected)} changes; missing "
        f"{sorted(set(run.expected) - set(run.sse))[:5]}, duplicated {len(run.sse) - len(set(run.sse))}"
    )


def test_graphql_subscribers_get_every_change_after_resuming(run: Run) -> None:
    assert run.graphql_resumes >= 3, "the GraphQL subscriber hardly resumed: the run did not test it"
    assert run.graphql == run.expected, (
        f"GraphQL: {len(run.graphql)} events for {len(run.expected)} changes; missing "
        f"{sorted(set(run.expected) - set(run.graphql))[:5]}, duplicated {len(run.graphql) - len(set(run.graphql))}"
    )


def limit_bound(phase: LimitPhase, instances: int = 2) -> int:
    """The most a key may be allowed in the phase: a full bucket, what refills meanwhile, one per instance."""
    return phase.rate + int(phase.rate * phase.elapsed / 60) + instances


def test_rate_limits_never_exceed_the_rate_by_more_than_one_per_instance(run: Run) -> None:
    assert run.limits
    for phase in run.limits:
        assert phase.refused > 0, f"{phase.name}: the key was never refused, so the limit was not tested"
        assert phase.allowed <= limit_bound(phase), (
            f"{phase.name}: {phase.allowed} allowed in {phase.elapsed:.1f} s at {phase.rate}/min "
            f"(at most {limit_bound(phase)})"
        )


def test_sigterm_drains_and_exits_cleanly(run: Run) -> None:
    assert run.exit_codes == [0], f"exit codes after SIGTERM: {run.exit_codes}"
