"""sitrep (entry cache on and off), a bare asyncpg + msgspec endpoint and PostGraphile v5, same run.

    nice .venv/bin/python bench/compare.py                       # 1M (sitrep_bench), one worker
    nice .venv/bin/python bench/compare.py --workers 2           # `sitrep serve --workers 2`
    nice .venv/bin/python bench/compare.py --sizes \\
        100k=postgresql://postgres@127.0.0.1/sitrep_bench_100k,1m=postgresql://postgres@127.0.0.1/sitrep_bench

Servers, all started at once on 127.0.0.1 against one database (`--servers` narrows them):
  sitrep          `sitrep serve --workers N` (uvicorn, uvloop, httptools), the entry cache at its default
  sitrep-nocache  the same with SITREP_ENTRY_CACHE_MB=0: every page reads its entries and links
  bare            bench/bare.py: the same /v1/entries pages, byte for byte, from asyncpg and msgspec
                  with no framework (uvicorn, same workers); REST only
  postgraphile5   PostGraphile v5 (bench/postgraphile/v5, `npm ci` on first use); GraphQL only,
                  one Node process whatever --workers says
Each has a pool of 10 connections (per worker), as sitrep's default pool_max.

Workloads, the first four mixed (each request picks at random, the same sequence for every
server within a round):
  blog      REST  the latest 50 of a random blog (every blog of the database)
  actor     REST  a random one of the 50 most linked actors, a random 30-day window, 50
  deep      REST  a random one of 50 cursors, spread down to 500,000 rows (half the table when smaller)
  gql-blog  GraphQL  a random blog's latest 50 with actors (role), locations, sources
  Q1-Q5     REST  bench/rest.py's five queries (Q4: 100,000 rows deep)
  GraphQL Qn      every query of bench/graphql.py (Q2, Q3 today), as each server's users write it
Before measuring, the REST servers' answers to a sample of every REST workload are compared
byte for byte (bodies and ETags) and the GraphQL servers' answers by entry ids and link
counts; any difference stops the run.

Load: wrk (`apt-get install -y wrk`), 16 connections, one thread, a Lua script that picks each
request at random from the workload's list. For every run: requests/s, wrk's p50/p99, CPU time
per request of the server's process tree and of its PostgreSQL backends (found by the client
ports of the server's connections), wrk's own CPU per request (it shares the cores), and the
RSS of the server's process tree (summed over workers), sampled at the end of each run. Runs
are interleaved: each workload on every server in turn, the server order reversed every round;
medians of the rounds are reported.

--sizes LABEL=DSN,…: for each database, Q1-Q5 and the GraphQL queries as above, then every
filter of bench/filter_matrix.py as single sequential calls of `entries.list_keys` under the
custom and the generic plan, with and without count (each call bounded by --filter-timeout).
A 10M database takes ~45 min to generate:
    createdb -h 127.0.0.1 -U postgres sitrep_bench_10m
    DATABASE_URL=postgresql://postgres@127.0.0.1/sitrep_bench_10m sitrep generate --entries 10000000 --seed 1

A/B of a setting in one interleaved run: `--variant NAME=ENV=VALUE,…` (repeatable) starts one
more sitrep server, sitrep-NAME, with those settings; it is in the byte-identity checks and has rows
of its own. `--workloads blog,actor,Q5` keeps only those workloads; `--no-write` leaves RESULTS.md:
    nice .venv/bin/python bench/compare.py --servers sitrep-nocache,bare --workloads blog,actor,Q5 \\
        --rounds 3 --duration 8 --no-write --variant slow=SITREP_REST_FAST=false,SITREP_ENTRY_CACHE_MB=0

The Markdown goes to bench/RESULTS.md between markers of its own (one section for one worker,
one for --workers 2, one for --sizes), replaced on rerun; --out also writes every run as JSON.
Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlencode

import asyncpg
import httpx
import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
VENV_BIN = Path(sys.executable).parent
# --sitrep-bin: the `sitrep` that serves (another venv, e.g. one without the test extras, whose
# schemathesis brings pydantic, which Litestar then imports in every process: ~8 MiB each)
SITREP_BIN = [VENV_BIN / "sitrep"]
RESULTS = BENCH / "RESULTS.md"
SECRET = "bench-secret-not-for-production"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/sitrep_bench"

from db.filters import EntryFilter  # noqa: E402
from db.page import Cursors  # noqa: E402


def _load(name: str) -> ModuleType:
    """A sibling script as a module (bench/ is no package; `graphql` would shadow graphql-core)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gql = _load("graphql")
rest = _load("rest")

ALL_SERVERS = ("sitrep", "sitrep-nocache", "bare", "postgraphile5")
REST_SERVERS = ("sitrep", "sitrep-nocache", "bare")
GQL_SERVERS = ("sitrep", "sitrep-nocache", "postgraphile5")
# --variant NAME=ENV=VALUE,…: more sitrep servers, each with settings of its own (an A/B in the same run)
VARIANTS: dict[str, dict[str, str]] = {}

# ---------------------------------------------------------------- workloads


@dataclass
class Workload:
    name: str
    kind: str  # "rest" or "graphql"
    title: str
    # REST: paths; GraphQL: a JSON body per server, one list per server (same index = same question)
    paths: list[str] = field(default_factory=list)
    bodies: dict[str, list[str]] = field(default_factory=dict)


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def rest_workloads(conn: asyncpg.Connection, secret: str, seed: int = 1, actor_urls: int = 500) -> list[Workload]:
    """The three mixed REST workloads over this database (also used by tests/bench/test_bare.py)."""
    rng = random.Random(seed)
    blogs = [r["slug"] for r in await conn.fetch("SELECT slug FROM blogs ORDER BY id")]
    actors = [
        r["slug"]
        for r in await conn.fetch(
            "SELECT a.slug FROM (SELECT actor_id, count(*) AS n FROM entry_actors GROUP BY actor_id"
            " ORDER BY n DESC, actor_id LIMIT 50) t JOIN actors a ON a.id = t.actor_id ORDER BY t.n DESC, a.id"
        )
    ]
    first, last, total = await conn.fetchrow("SELECT min(published_at), max(published_at), count(*) FROM entries")
    span = max((last - first).total_seconds() - 30 * 86400, 1)
    actor_paths = []
    for _ in range(actor_urls):
        since = first + timedelta(seconds=int(rng.uniform(0, span)))
        params = {"actor": rng.choice(actors), "since": _z(since), "until": _z(since + timedelta(days=30)), "limit": 50}
        actor_paths.append("/v1/entries?" + urlencode(params))
    return [
        Workload(
            "blog",
            "rest",
            f"latest 50 of a random blog ({len(blogs):,} blogs)",
            paths=[f"/v1/entries?blog={slug}&limit=50" for slug in blogs],
        ),
        Workload("actor", "rest", "random top-50 actor, random 30-day window, 50", paths=actor_paths),
        Workload(
            "deep",
            "rest",
            f"random deep cursor (50 cursors down to {min(500_000, total // 2):,}), 50",
            paths=await deep_paths(conn, secret),
        ),
    ]


async def deep_paths(conn: asyncpg.Connection, secret: str, count: int = 50, deepest: int = 500_000) -> list[str]:
    """`count` cursors of the unfiltered list, evenly down to `deepest` rows (half the table at most),
    made as sitrep makes them: after row d, the (published_at, id) key signed under no filter."""
    total = await conn.fetchval("SELECT count(*) FROM entries")
    deepest = min(deepest, total // 2)
    depths = [max(1, deepest * (i + 1) // count) for i in range(count)]
    cursors = Cursors(secret)
    out = []
    for depth in depths:
        row = await conn.fetchrow(
            "SELECT published_at, id FROM entries ORDER BY published_at DESC, id DESC OFFSET $1 LIMIT 1", depth - 1
        )
        token = cursors.encode((row["published_at"], row["id"]), sort="-published_at", filter=EntryFilter())
        out.append("/v1/entries?" + urlencode({"limit": 50, "cursor": token}))
    return out


async def q_workloads(conn: asyncpg.Connection, dsn: str, secret: str) -> list[Workload]:
    """bench/rest.py's Q1-Q5 (one URL each; Q4's cursor made at 100,000 rows, or half the table)."""
    targets = await rest.pick_targets(dsn)
    total = int(targets["entries"])
    deep = (await deep_paths(conn, secret, count=1, deepest=100_000))[0]
    urls = rest.queries(targets, unquote(deep.split("cursor=", 1)[1]))
    out = []
    for name, path in urls.items():
        short, title = name.split(" ", 1)
        if short == "Q4":
            title = f"page {min(100_000, total // 2):,} deep"
        out.append(Workload(short, "rest", title, paths=[path]))
    return out


GQL_BLOG = {
    "sitrep": "query B($blog: String!) { entries(filter: {blog: [$blog]}, first: 50) { nodes {"
    + gql.SITREP_NODE
    + "} } }",
    "postgraphile5": gql._v5(
        "query B($blog: String!) { blogBySlug(slug: $blog) { entriesByBlogId(first: 50,"
        " orderBy: [PUBLISHED_AT_DESC, ID_DESC]) { nodes {" + gql.POSTGRAPHILE_NODE + "} } } }"
    ),
}


async def graphql_workloads(conn: asyncpg.Connection, dsn: str) -> list[Workload]:
    blogs = [r["slug"] for r in await conn.fetch("SELECT slug FROM blogs ORDER BY id")]
    mixed = Workload("gql-blog", "graphql", f"GraphQL: a random blog ({len(blogs):,}) with actors, locations, sources")
    for server, text in GQL_BLOG.items():
        mixed.bodies[server] = [json.dumps({"query": text, "variables": {"blog": slug}}) for slug in blogs]
    targets = await gql.pick_targets(dsn)
    out = [mixed]
    for (q, server), body in gql.bodies(targets).items():
        if server == "postgraphile":  # v4 is bench/graphql.py's business
            continue
        found = next((w for w in out if w.name == f"GraphQL {q}"), None)
        if found is None:
            found = Workload(f"GraphQL {q}", "graphql", "GraphQL " + gql.TITLES.get(q, q))
            out.append(found)
        found.bodies[server] = [body.decode()]
    for w in out:
        w.bodies["sitrep-nocache"] = w.bodies["sitrep"]
    return out


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    base: str
    pid: int


@contextmanager
def started(name: str, dsn: str, workers: int, pool: int = 10) -> Iterator[Server]:
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="sitrep-compare-")
    env = {**os.environ, "DATABASE_URL": dsn, "SITREP_SECRET": SECRET, "SITREP_POOL_MAX": str(pool)}
    env.pop("REDIS_URL", None)
    if name.startswith("sitrep"):
        env |= {"SITREP_LOAD_SAMPLE": "false", "SITREP_DATA_DIR": data_dir, "SITREP_ANONYMOUS_RATE": "100000000"}
        if name == "sitrep-nocache":
            env["SITREP_ENTRY_CACHE_MB"] = "0"
        env |= VARIANTS.get(name, {})
        cmd = [str(SITREP_BIN[0]), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        cwd = REPO
    elif name == "bare":
        cmd = [sys.executable, str(BENCH / "bare.py"), "--port", str(port), "--workers", str(workers)]
        cwd = REPO
    elif name == "postgraphile5":
        env |= {"PORT": str(port), "POOL_SIZE": str(pool), "NODE_ENV": "production"}
        cmd, cwd = [str(gql.NODE22), "server.mjs"], gql.PG5_DIR
    else:
        raise ValueError(name)
    log = open(Path(data_dir + ".log"), "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; its output: {log.name}")
            with suppress(httpx.TransportError):
                if name == "postgraphile5":
                    r = httpx.post(base + "/graphql", json={"query": "{ __typename }"}, timeout=5)
                else:
                    r = httpx.get(base + "/ready", timeout=5)
                if r.status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer in 120 s")
            time.sleep(0.3)
        time.sleep(1 if workers > 1 else 0)  # every worker up
        yield Server(name, base, proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def _tree(pid: int) -> list[psutil.Process]:
    with suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def rss_mib(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        with suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


class Meter:
    """CPU seconds of a server's process tree and of the PostgreSQL backends it is connected to."""

    def __init__(self, server: Server, admin: asyncpg.Connection, loop: asyncio.AbstractEventLoop) -> None:
        self.server, self.admin, self.loop = server, admin, loop

    def _backends(self) -> dict[int, float]:
        ports = []
        for p in _tree(self.server.pid):
            with suppress(psutil.Error):
                ports += [c.laddr.port for c in p.net_connections("tcp") if c.raddr and c.raddr.port == 5432]
        rows = self.loop.run_until_complete(
            self.admin.fetch("SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", ports)
        )
        out = {}
        for r in rows:
            with suppress(psutil.Error):
                out[r["pid"]] = _cpu([psutil.Process(r["pid"])])
        return out

    def snapshot(self) -> tuple[float, dict[int, float]]:
        return _cpu(_tree(self.server.pid)), self._backends()

    @staticmethod
    def spent(before: tuple[float, dict[int, float]], after: tuple[float, dict[int, float]]) -> tuple[float, float]:
        return after[0] - before[0], sum(t - before[1].get(pid, 0.0) for pid, t in after[1].items())


# ---------------------------------------------------------------- load


LUA = """local items = {{
{items}
}}
local method = "{method}"
local headers = {{["Content-Type"] = "application/json"}}
init = function(args) math.randomseed({seed}) end
request = function()
  local item = items[math.random(#items)]
  if method == "GET" then return wrk.format("GET", item) end
  return wrk.format("POST", "/graphql", headers, item)
end
"""


def lua(folder: Path, name: str, items: list[str], method: str, seed: int) -> Path:
    path = folder / (re.sub(r"\W+", "-", name) + f"-{seed}.lua")
    path.write_text(LUA.format(items=",\n".join("[==[" + i + "]==]" for i in items), method=method, seed=seed))
    return path


@dataclass
class Run:
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    server_cpu_ms: float = 0.0
    db_cpu_ms: float = 0.0
    wrk_cpu_ms: float = 0.0
    rss_mib: float = 0.0


def wrk(url: str, script: Path, seconds: float, connections: int, threads: int, pin: str | None) -> Run:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    if pin:
        cmd = ["taskset", "-c", pin, *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    if not (total and rps and p50 and p99):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    n = int(total.group(1))
    spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(
        requests=n,
        requests_per_s=float(rps.group(1)),
        p50_ms=gql._ms(p50.group(1)),
        p99_ms=gql._ms(p99.group(1)),
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        wrk_cpu_ms=1000 * spent / max(n, 1),
    )


# ---------------------------------------------------------------- checking the answers


def check_rest(servers: dict[str, Server], workloads: list[Workload], sample: int = 5) -> None:
    """Byte-identical bodies and ETags from every REST server on a sample of each workload."""
    names = [s for s in (*REST_SERVERS, *VARIANTS) if s in servers]
    with httpx.Client(timeout=60) as client:
        del client.headers["accept-encoding"]  # as wrk: no compression
        for w in workloads:
            for path in w.paths[:: max(1, len(w.paths) // sample)][:sample]:
                got = {}
                for name in names:
                    r = client.get(servers[name].base + path)
                    if r.status_code != 200:
                        raise RuntimeError(f"{name} {w.name} {path}: {r.status_code} {r.text[:300]}")
                    got[name] = (r.content, r.headers.get("etag"))
                if len(set(got.values())) != 1:
                    raise RuntimeError(f"{w.name} {path}: the servers' pages differ ({', '.join(names)})")


def _gql_summary(workload: str, server: str, body: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    """(entry id, actors, locations, sources) per entry: bench/graphql.py's for its queries."""
    if workload.startswith("GraphQL "):
        return list(gql.summary(workload.removeprefix("GraphQL "), server.removesuffix("-nocache"), body))
    if body.get("errors") or not body.get("data"):
        raise RuntimeError(f"{server} answered errors: {json.dumps(body)[:600]}")
    data = body["data"]
    if "blogBySlug" in data:
        return [
            (
                int(n["rowId"]),
                len(n["actorsByEntryActorEntryIdAndActorId"]["edges"]),
                len(n["locationsByEntryLocationEntryIdAndLocationId"]["nodes"]),
                len(n["sourcesByEntrySourceEntryIdAndSourceId"]["nodes"]),
            )
            for n in data["blogBySlug"]["entriesByBlogId"]["nodes"]
        ]
    return [
        (n["databaseId"], len(n["actors"]), len(n["locations"]), len(n["sources"])) for n in data["entries"]["nodes"]
    ]


def _as_written_for(server: str) -> str:
    """Whose GraphQL documents a server takes: a --variant is sitrep with other settings."""
    return "sitrep" if server in VARIANTS else server


def check_graphql(servers: dict[str, Server], workloads: list[Workload], sample: int = 3) -> None:
    names = [s for s in (*GQL_SERVERS, *VARIANTS) if s in servers]
    with httpx.Client(timeout=60) as client:
        for w in workloads:
            n = len(w.bodies["sitrep"])
            for i in range(0, n, max(1, n // sample)):
                got = {}
                for name in names:
                    r = client.post(
                        servers[name].base + "/graphql",
                        content=w.bodies[_as_written_for(name)][i],
                        headers={"content-type": "application/json"},
                    )
                    r.raise_for_status()
                    got[name] = _gql_summary(w.name, _as_written_for(name), r.json())
                if any(v != got[names[0]] for v in got.values()) or not got[names[0]]:
                    raise RuntimeError(f"{w.name}: the GraphQL servers disagree: {got}")


# ---------------------------------------------------------------- the rounds


def measure(
    servers: dict[str, Server],
    workloads: list[Workload],
    args: argparse.Namespace,
    label: str = "",
) -> dict[str, dict[str, list[Run]]]:
    """Every workload on every server that answers it, `args.rounds` times, order reversed each round."""
    loop = asyncio.new_event_loop()
    admin = loop.run_until_complete(asyncpg.connect(args.admin_dsn))
    meters = {name: Meter(s, admin, loop) for name, s in servers.items()}
    runs: dict[str, dict[str, list[Run]]] = {w.name: {} for w in workloads}
    order = list(servers)
    try:
        with tempfile.TemporaryDirectory(prefix="sitrep-compare-lua-") as tmp:
            folder = Path(tmp)

            def script(w: Workload, server: str, seed: int) -> tuple[str, Path]:
                if w.kind == "rest":
                    return servers[server].base, lua(folder, f"{w.name}-{server}", w.paths, "GET", seed)
                url = servers[server].base + "/graphql"
                bodies = w.bodies[_as_written_for(server)]
                return url, lua(folder, f"{w.name}-{server}", bodies, "POST", seed)

            def serves(w: Workload, server: str) -> bool:
                if server in VARIANTS:
                    return w.kind == "rest" or "sitrep" in w.bodies
                return server in (REST_SERVERS if w.kind == "rest" else GQL_SERVERS) and (
                    w.kind == "rest" or server in w.bodies
                )

            for w in workloads:  # warm-up: plans, caches, JIT
                for server in order:
                    if serves(w, server):
                        url, path = script(w, server, 0)
                        wrk(url, path, args.warmup, args.connections, args.threads, args.pin)
            for round_no in range(1, args.rounds + 1):
                for w in workloads:
                    for server in order if round_no % 2 else reversed(order):
                        if not serves(w, server):
                            continue
                        url, path = script(w, server, round_no)
                        before = meters[server].snapshot()
                        run = wrk(url, path, args.duration, args.connections, args.threads, args.pin)
                        server_s, db_s = Meter.spent(before, meters[server].snapshot())
                        run.server_cpu_ms = 1000 * server_s / max(run.requests, 1)
                        run.db_cpu_ms = 1000 * db_s / max(run.requests, 1)
                        run.rss_mib = rss_mib(servers[server].pid)
                        runs[w.name].setdefault(server, []).append(run)
                        print(
                            f"{label}round {round_no} {w.name:10} {server:14} {run.requests_per_s:8.1f} req/s"
                            f"  p50 {run.p50_ms:6.1f}  p99 {run.p99_ms:6.1f} ms  cpu/req {run.server_cpu_ms:5.2f}"
                            f" + db {run.db_cpu_ms:5.2f} (wrk {run.wrk_cpu_ms:4.2f}) ms  rss {run.rss_mib:5.0f} MiB"
                            f"  non-2xx {run.non_2xx} errors {run.errors}",
                            flush=True,
                        )
    finally:
        loop.run_until_complete(admin.close())
        loop.close()
    return runs


def medians(runs: dict[str, dict[str, list[Run]]]) -> dict[str, dict[str, dict[str, float]]]:
    keys = ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms", "db_cpu_ms", "wrk_cpu_ms")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for w, by_server in runs.items():
        out[w] = {}
        for s, rs in by_server.items():
            m = {k: statistics.median(getattr(r, k) for r in rs) for k in keys}
            m["rss_mib"] = max(r.rss_mib for r in rs)
            m["failed"] = sum(r.non_2xx + r.errors for r in rs)
            out[w][s] = m
    return out


LABELS = {
    "sitrep": "sitrep",
    "sitrep-nocache": "sitrep, no entry cache",
    "bare": "bare",
    "postgraphile5": "PostGraphile 5",
}


def throughput_table(workloads: list[Workload], med: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = [
        "| workload | server | req/s | ÷ bare (REST) or ÷ PostGraphile 5 | p50 ms | p99 ms"
        " | CPU ms/req server | CPU ms/req PostgreSQL | CPU ms/req wrk | RSS MiB (max) | failed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in workloads:
        by = med.get(w.name, {})
        ref = by.get("bare" if w.kind == "rest" else "postgraphile5")
        for s in (*ALL_SERVERS, *VARIANTS):
            m = by.get(s)
            if m is None:
                continue
            ratio = f"{m['requests_per_s'] / ref['requests_per_s']:.2f}" if ref and ref is not m else ""
            lines.append(
                f"| {w.name}: {w.title} | {LABELS.get(s, s)} | {m['requests_per_s']:.0f} | {ratio} | {m['p50_ms']:.1f}"
                f" | {m['p99_ms']:.1f} | {m['server_cpu_ms']:.2f} | {m['db_cpu_ms']:.2f} | {m['wrk_cpu_ms']:.2f} | {m['rss_mib']:.0f}"
                f" | {m['failed']:.0f} |"
            )
    return lines


# ---------------------------------------------------------------- filters per size


async def filter_costs(dsn: str, timeout_s: float, runs: int) -> dict[str, dict[str, float | None]]:
    """bench/filter_matrix.py's cases: p99 ms per plan mode, with and without count (None: timed out)."""
    fm = _load("filter_matrix")
    from db import entries
    from db.page import Page

    conns = {
        mode: await fm.connect(
            dsn, server_settings={"plan_cache_mode": mode, "statement_timeout": str(int(timeout_s * 1000))}
        )
        for mode in ("force_custom_plan", "force_generic_plan")
    }
    out: dict[str, dict[str, float | None]] = {}
    try:
        for name, flt, sort, page in await fm.cases(conns["force_custom_plan"]):
            cells: dict[str, float | None] = {}
            for mode, conn in conns.items():
                for counted in (False, True):
                    p = Page(limit=page.limit, after=page.after, count=counted)
                    samples: list[float] = []
                    try:
                        for i in range(runs + 6):
                            started_at = time.perf_counter()
                            await entries.list_keys(conn, flt, sort, p)
                            if i >= 6:
                                samples.append((time.perf_counter() - started_at) * 1000)
                    except asyncpg.QueryCanceledError:
                        cells[f"{mode[6:-5]}{' count' if counted else ''}"] = None
                        continue
                    samples.sort()
                    cells[f"{mode[6:-5]}{' count' if counted else ''}"] = samples[max(0, int(len(samples) * 0.99) - 1)]
            out[name] = cells
            print(f"  filter {name:44} " + "  ".join(f"{k} {_cell(v)}" for k, v in cells.items()), flush=True)
    finally:
        for conn in conns.values():
            await conn.close()
    return out


def _cell(v: float | None) -> str:
    return "timeout" if v is None else f"{v:.1f}"


# ---------------------------------------------------------------- the record


def machine() -> str:
    m = gql.machine()
    return f"{m['cpu']}, nproc {m['nproc']}, {m['memory_gib']} GiB, Linux {m['kernel']}"


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "api", "db", "schema", "bench"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return head.strip() + (" (+ uncommitted changes)" if dirty else "")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_section(marker: str, lines: list[str]) -> None:
    start, end = f"<!-- bench/compare.py {marker}: start -->", f"<!-- bench/compare.py {marker}: end -->"
    text = RESULTS.read_text() if RESULTS.exists() else ""
    block = "\n".join([start, *lines, end])
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def header(args: argparse.Namespace, load_start: str, began: datetime, what: str) -> list[str]:
    ended = datetime.now(UTC)
    return [
        f"## {what} (bench/compare.py, {began:%Y-%m-%d %H:%M}-{ended:%H:%M} UTC)",
        "",
        "Written by bench/compare.py and replaced when it runs again (see its docstring for what is measured).",
        "",
        f"- **Command:** `{args.command}`",
        f"- **Commit:** {commit()}",
        f"- **Machine:** {machine()}",
        f"- **Load average (1, 5, 15 min):** {load_start} at the start, {load()} at the end",
        f"- **Settings:** {args.rounds} rounds of {args.duration} s per run, wrk -t{args.threads}"
        f" -c{args.connections}{f' pinned to CPU {args.pin}' if args.pin else ''},"
        f" server workers {args.workers}, server order reversed every round; medians of the rounds,"
        " RSS the largest sample, summed over the server's processes (with several workers: the supervisor and"
        " every worker)",
    ]


# ---------------------------------------------------------------- main


def migrate(dsn: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sitrep-compare-") as data_dir:
        env = {**os.environ, "DATABASE_URL": dsn, "SITREP_DATA_DIR": data_dir}
        subprocess.run([str(VENV_BIN / "sitrep"), "migrate"], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


async def _workloads(dsn: str, mixed: bool, only: str | None = None) -> tuple[list[Workload], int]:
    conn = await asyncpg.connect(dsn)
    try:
        total = int(await conn.fetchval("SELECT count(*) FROM entries"))
        out = await rest_workloads(conn, SECRET) if mixed else []
        gq = await graphql_workloads(conn, dsn)
        if not mixed:
            gq = gq[1:]  # the Qs only
        out += [gq[0]] if mixed else []
        out += await q_workloads(conn, dsn, SECRET)
        out += gq[1:] if mixed else gq
    finally:
        await conn.close()
    if only:
        out = [w for w in out if w.name in only.split(",")]
    return out, total


def run_servers(dsn: str, args: argparse.Namespace, mixed: bool, label: str = "") -> tuple[list[Workload], Any, int]:
    migrate(dsn)
    workloads, total = asyncio.run(_workloads(dsn, mixed, args.workloads))
    with ExitStack() as stack:
        servers = {name: stack.enter_context(started(name, dsn, args.workers)) for name in args.servers}
        check_rest(servers, [w for w in workloads if w.kind == "rest"])
        check_graphql(servers, [w for w in workloads if w.kind == "graphql"])
        print(f"{label}answers agree ({', '.join(servers)})", flush=True)
        if args.check_only:
            sys.exit(0)
        runs = measure(servers, workloads, args, label)
    return workloads, runs, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--sizes", help="LABEL=DSN,…: Q1-Q5, GraphQL and the filters per database")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk per workload and server first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pin", help="run wrk under taskset -c PIN (e.g. 1)")
    parser.add_argument("--filter-timeout", type=float, default=5, help="seconds at most per filter call (--sizes)")
    parser.add_argument("--filter-runs", type=int, default=20, help="sequential calls per filter cell (--sizes)")
    parser.add_argument("--servers", default=",".join(ALL_SERVERS))
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=ENV=VALUE,…",
        help="one more sitrep server named sitrep-NAME with these settings, e.g. fast=SITREP_REST_FAST=false"
        " (repeatable); with --workloads and --no-write, an A/B of a setting in one interleaved run",
    )
    parser.add_argument(
        "--sitrep-bin",
        type=Path,
        help="the sitrep executable that serves [default: this venv's]; e.g. of `pip install .` in a venv of its own",
    )
    parser.add_argument("--workloads", help="only these workloads (comma-separated names: blog,actor,deep,Q5,…)")
    parser.add_argument("--check-only", action="store_true", help="compare the servers' answers and stop")
    parser.add_argument("--no-write", action="store_true", help="print, but leave bench/RESULTS.md alone")
    parser.add_argument("--out", type=Path, help="every run as JSON")
    args = parser.parse_args()
    args.servers = tuple(args.servers.split(","))
    if not set(args.servers) <= set(ALL_SERVERS):
        parser.error(f"--servers: any of {', '.join(ALL_SERVERS)}")
    for item in args.variant:
        name, _, settings = item.partition("=")
        pairs = [pair.split("=", 1) for pair in settings.split(",") if pair]
        if (
            not name
            or not pairs
            or any(len(pair) != 2 or not pair[0].startswith(("SITREP_", "PYTHON", "MALLOC_")) for pair in pairs)
        ):
            parser.error(f"--variant {item!r}: NAME=SITREP_SETTING=VALUE,… (or PYTHON…, MALLOC_… variables)")
        VARIANTS[f"sitrep-{name}"] = dict(pairs)
    args.servers += tuple(VARIANTS)
    if args.sitrep_bin is not None:
        if not args.sitrep_bin.is_file():
            parser.error(f"--sitrep-bin: no such file {args.sitrep_bin}")
        SITREP_BIN[0] = args.sitrep_bin.resolve()
    args.command = "nice .venv/bin/python bench/compare.py " + shlex.join(sys.argv[1:])
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install -y wrk)")
    if "postgraphile5" in args.servers and not (gql.PG5_DIR / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=gql.PG5_DIR, check=True)

    began, load_start = datetime.now(UTC), load()
    report: dict[str, Any] = {"command": args.command, "machine": machine(), "load_start": load_start}
    if args.sizes:
        sizes = [item.split("=", 1) for item in args.sizes.split(",")]
        by_size: dict[str, Any] = {}
        for label, dsn in sizes:
            args.admin_dsn = dsn
            workloads, runs, total = run_servers(dsn, args, mixed=False, label=f"[{label}] ")
            print(f"[{label}] filters", flush=True)
            try:
                filters = asyncio.run(filter_costs(dsn, args.filter_timeout, args.filter_runs))
            except Exception as exc:  # keep the throughput runs; say what failed
                print(f"[{label}] the filters failed: {exc!r}", flush=True)
                filters = {}
            by_size[label] = {"entries": total, "workloads": workloads, "medians": medians(runs), "filters": filters}
            report[label] = {
                "entries": total,
                "runs": {w: {s: [asdict(r) for r in rs] for s, rs in by.items()} for w, by in runs.items()},
                "filters": filters,
            }
        lines = header(args, load_start, began, "Cost as the data grows: Q1-Q5, GraphQL and every filter per size")
        for label, got in by_size.items():
            lines += [
                "",
                f"### {label}: {got['entries']:,} entries",
                "",
                *throughput_table(got["workloads"], got["medians"]),
            ]
        labels = list(by_size)
        lines += [
            "",
            "### Filters: p99 ms of `entries.list_keys`, single sequential calls"
            f" ({args.filter_runs} after 6 warm-up; `timeout`: over {args.filter_timeout:g} s)",
            "",
            "| filter | "
            + " | ".join(f"{lb} custom / generic / +count custom / +count generic" for lb in labels)
            + " |",
            "|---|" + "---:|" * len(labels),
        ]
        names = list(dict.fromkeys(name for got in by_size.values() for name in got["filters"]))
        for name in names:
            cells = []
            for lb in labels:
                c = by_size[lb]["filters"].get(name, {})
                cells.append(
                    " / ".join(_cell(c.get(k)) for k in ("custom", "generic", "custom count", "generic count"))
                )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        marker = "sizes"
    else:
        args.admin_dsn = args.dsn
        workloads, runs, total = run_servers(args.dsn, args, mixed=True)
        med = medians(runs)
        report |= {
            "entries": total,
            "runs": {w: {s: [asdict(r) for r in rs] for s, rs in by.items()} for w, by in runs.items()},
        }
        what = (
            f"sitrep, bare, PostGraphile 5 at {total:,} entries, {args.workers} worker{'s' if args.workers > 1 else ''}"
        )
        lines = [*header(args, load_start, began, what), "", *throughput_table(workloads, med)]
        marker = f"workers {args.workers}"
    report["load_end"] = load()
    text = "\n".join(lines)
    print()
    print(text)
    if not args.no_write:
        write_section(marker, lines)
    if args.out:
        args.out.write_text(
            json.dumps(report, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o))
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
