"""Server CPU per request on the mixed entry workloads: sitrep (entry cache off / on) beside a
bare asyncpg + msgspec endpoint serving the same bytes.

    nice .venv/bin/python bench/uncached.py --dsn postgresql://postgres@127.0.0.1:5432/sitrep_bench \\
        --seconds 10 --rounds 3

The workloads (issue #10), each a list of URLs that wrk picks from at random per request:

  blog   the latest 50 of a random blog (every blog, by slug)    /v1/entries?blog=S&limit=50
  actor  a random top-50 actor in a random 30-day window         /v1/entries?actor=S&since=..&until=..&limit=50
  deep   a random deep cursor (50 cursors down to 500k rows)      /v1/entries?limit=50&cursor=C

Each server runs as one uvicorn process (uvloop, httptools) on 127.0.0.1. The figure is the
server's CPU time (user + system, from /proc, children included) over the requests it
answered: on a machine shared with other work that is steadier than requests per second,
which are printed too. The load average is printed with every row. Rounds interleave the
servers, the order reversed every round; the median of the rounds is reported.

The bare endpoint (`bare_app` below, `--bare` to run it alone) answers the same three URL
shapes with the same JSON bytes: one statement per page (entries, their link ids and media),
references from dicts loaded at startup, rows to `db.rows.Entry` and one msgspec encode, the
same signed cursors. No routing, no parameter checks, no ETag, no middleware.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import asyncpg
import httpx
import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VENV_BIN = Path(sys.executable).parent
SECRET = "bench-secret-not-for-production"
LIMIT = 50

# ---------------------------------------------------------------- the bare endpoint


def bare_app(dsn: str) -> Any:
    """A raw ASGI app: GET /v1/entries?blog=|actor=&since=&until=|cursor= and nothing else."""
    from db.entries import _LINKED, _SEEN_SEQ, _linked_entries
    from db.filters import EntryFilter
    from db.page import Cursors
    from db.refs import Refs, _read
    from db.rows import Entry
    from db.where import ENTRY_COLUMNS

    class Page(msgspec.Struct, omit_defaults=True):
        limit: int
        next_cursor: str | None

    class Body(msgspec.Struct):
        data: list[Entry]
        page: Page

    encode = msgspec.json.Encoder().encode
    cursors = Cursors(SECRET)
    state: dict[str, Any] = {}
    order = " ORDER BY e.published_at DESC, e.id DESC LIMIT 51"
    after = " AND (e.published_at, e.id) < ($2, $3::bigint)"

    def linked(page_sql: str) -> str:  # without the change seq sitrep reads for its caches
        sql = _LINKED.replace(_SEEN_SEQ, "0 AS seen_seq")
        return sql.format(page=page_sql, col="published_at", direction="DESC")

    by_blog = f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.blog_id = (SELECT id FROM blogs WHERE slug = $1)"
    sql_blog = linked(by_blog + order)
    sql_blog_after = linked(by_blog + after + order)
    sql_actor = linked(
        f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id IN (SELECT l.entry_id FROM entry_actors l"
        " WHERE l.actor_id = (SELECT id FROM actors WHERE slug = $1) AND l.published_at >= $2 AND l.published_at < $3"
        " ORDER BY l.published_at DESC, l.entry_id DESC LIMIT 51)" + order
    )
    sql_deep = linked(f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE (e.published_at, e.id) < ($1, $2::bigint)" + order)

    async def startup() -> None:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
        refs = Refs(max_age=1e9, max_size=10**9)
        async with pool.acquire() as conn:
            everything = await conn.fetchrow(
                "SELECT (SELECT array_agg(id) FROM blogs), (SELECT array_agg(id) FROM actors),"
                " (SELECT array_agg(id) FROM locations), (SELECT array_agg(id) FROM sources)"
            )
            refs._store(await _read(conn, *(list(v or []) for v in everything)))
        refs.live, refs.seq = True, 2**62
        state["pool"], state["refs"] = pool, refs

    async def page(qs: bytes) -> bytes:
        q = {k: v[0] for k, v in parse_qs(qs.decode()).items()}
        flt: EntryFilter
        if "blog" in q:
            flt = EntryFilter(blog=(q["blog"],))
            sql, args = sql_blog, [q["blog"]]
        elif "actor" in q:
            since = datetime.fromisoformat(q["since"])
            until = datetime.fromisoformat(q["until"])
            flt = EntryFilter(actor=(q["actor"],), since=since, until=until)
            sql, args = sql_actor, [q["actor"], since, until]
        else:
            flt = EntryFilter()
            sql, args = sql_deep, []
        if "cursor" in q:
            key = cursors.decode(q["cursor"], sort="-published_at", filter=flt, value_type=datetime)
            if "blog" in q:
                sql = sql_blog_after
            args += [key[0], key[1]]
        async with state["pool"].acquire() as conn:
            records = await conn.fetch(sql, *args)
            rows = await _linked_entries(conn, state["refs"], records)
        more = len(rows) > LIMIT
        rows = rows[:LIMIT]
        token = None
        if more:
            last = rows[-1]
            token = cursors.encode((last.published_at, last.id), sort="-published_at", filter=flt)
        return encode(Body(data=rows, page=Page(limit=LIMIT, next_cursor=token)))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/ready":
            body = b'{"status":"ready"}'
        else:
            body = await page(scope["query_string"])
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(kind: str, dsn: str, cache_mb: int, workers: int = 1) -> Iterator[tuple[str, int]]:
    """kind: sitrep or bare; yields (base URL, pid)."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="sitrep-uncached-")
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "SITREP_LOAD_SAMPLE": "false",
        "SITREP_SECRET": SECRET,
        "SITREP_DATA_DIR": data_dir,
        "SITREP_ANONYMOUS_RATE": "100000000",
        "SITREP_ENTRY_CACHE_MB": str(cache_mb),
        "BARE_DSN": dsn,
    }
    if kind == "sitrep" and workers > 1:
        cmd = [str(VENV_BIN / "sitrep"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--workers", str(workers)]
    else:
        app = "api.asgi:app" if kind == "sitrep" else "bench.uncached:bare"
        cmd = [str(VENV_BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop"]
        cmd += ["--http", "httptools", "--log-level", "warning", "--no-access-log", app]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited with {proc.returncode}")
            try:
                if httpx.get(base + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not become ready in 60 s")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out += _tree(int(child))
    return out


def cpu_seconds(pid: int) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def rss_mib(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# ---------------------------------------------------------------- workloads

_LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


async def workloads(dsn: str, seed: int = 1) -> dict[str, list[str]]:
    from db.filters import EntryFilter
    from db.page import Cursors

    rnd = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    try:
        blogs = [r["slug"] for r in await conn.fetch("SELECT slug FROM blogs ORDER BY id")]
        actors = await conn.fetch(
            "SELECT a.slug, min(l.published_at) AS first, max(l.published_at) AS last FROM"
            " (SELECT actor_id FROM entry_actors GROUP BY actor_id ORDER BY count(*) DESC LIMIT 50) t"
            " JOIN actors a ON a.id = t.actor_id JOIN entry_actors l ON l.actor_id = a.id GROUP BY a.slug"
        )
        depths = sorted(rnd.randrange(1000, 500_000) for _ in range(50))
        keys = [
            await conn.fetchrow(
                "SELECT published_at, id FROM entries ORDER BY published_at DESC, id DESC OFFSET $1 LIMIT 1", d
            )
            for d in depths
        ]
    finally:
        await conn.close()
    actor_urls = []
    for _ in range(500):
        a = rnd.choice(actors)
        span = max((a["last"] - a["first"]).total_seconds() - 30 * 86400, 1)
        since = a["first"] + timedelta(seconds=rnd.uniform(0, span))
        until = since + timedelta(days=30)
        q = {"actor": a["slug"], "since": _z(since), "until": _z(until), "limit": LIMIT}
        actor_urls.append("/v1/entries?" + urlencode(q))
    cursors = Cursors(SECRET)
    flt = EntryFilter()
    deep_urls = [
        "/v1/entries?"
        + urlencode({"limit": LIMIT, "cursor": cursors.encode((k[0], k[1]), sort="-published_at", filter=flt)})
        for k in keys
    ]
    return {
        "blog": [f"/v1/entries?blog={b}&limit={LIMIT}" for b in blogs],
        "actor": actor_urls,
        "deep": deep_urls,
    }


def _z(t: datetime) -> str:
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def check_same_bytes(bases: dict[str, str], urls: list[str]) -> None:
    with httpx.Client(timeout=30) as client:
        for url in urls:
            bodies = {name: client.get(base + url) for name, base in bases.items()}
            contents = {name: r.content for name, r in bodies.items()}
            if len(set(contents.values())) != 1:
                sizes = {name: (r.status_code, len(r.content)) for name, r in bodies.items()}
                raise SystemExit(f"different bytes for {url}: {sizes}")


def run_wrk(base: str, pid: int, paths: list[str], seconds: float, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(paths) + "\n")
        path_file = f.name
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_LUA % path_file)
        script = f.name
    before = cpu_seconds(pid)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "-s", script, "--latency", base + "/"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"wrk failed: {done.stderr}{done.stdout}")
    out = done.stdout
    cpu = cpu_seconds(pid) - before
    os.unlink(path_file)
    os.unlink(script)
    requests = int(out.split(" requests in ")[0].split()[-1])
    errors = 0
    for line in out.splitlines():
        if "Non-2xx" in line or "Socket errors" in line:
            errors += sum(int(x) for x in line.replace(",", " ").split() if x.isdigit())
    if errors:
        raise RuntimeError(f"wrk reported errors:\n{out}")
    return {
        "requests": requests,
        "rps": requests / seconds,
        "cpu_ms": 1000 * cpu / max(requests, 1),
        "load1": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/sitrep_bench")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--servers", default="cache-off,cache-on,bare")
    parser.add_argument("--workloads", default="blog,actor,deep")
    parser.add_argument("--cache-mb", type=int, default=16)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--rss-workers",
        type=int,
        default=0,
        help="instead: `sitrep serve --workers N` (default cache size), every workload in turn, then its RSS",
    )
    args = parser.parse_args()
    urls = asyncio.run(workloads(args.dsn))
    if args.rss_workers:
        rss_run(args, urls)
        return
    chosen = args.workloads.split(",")
    servers = args.servers.split(",")
    results: dict[str, dict[str, list[dict[str, float]]]] = {s: {w: [] for w in chosen} for s in servers}
    rss: dict[str, float] = {}
    spec = {"cache-off": ("sitrep", 0), "cache-on": ("sitrep", args.cache_mb), "bare": ("bare", 0)}
    with contextmanager_all(servers, spec, args.dsn) as running:
        check_same_bytes({s: running[s][0] for s in servers}, [u for w in chosen for u in urls[w][:3]])
        for base, pid in running.values():  # warm: plans, references, connections
            for w in chosen:
                run_wrk(base, pid, urls[w], 2, args.connections)
        for n in range(args.rounds):
            order = servers if n % 2 == 0 else servers[::-1]
            for w in chosen:
                for s in order:
                    base, pid = running[s]
                    r = run_wrk(base, pid, urls[w], args.seconds, args.connections)
                    results[s][w].append(r)
                    print(
                        f"round {n} {w:5} {s:9} {r['rps']:7.0f} req/s {r['cpu_ms']:5.2f} ms CPU/req load {r['load1']:.2f}"
                    )
        for s in servers:
            rss[s] = rss_mib(running[s][1])
    print(f"\n{'workload':8} " + " ".join(f"{s:>18}" for s in servers) + "   (median CPU ms/req, req/s)")
    table: dict[str, Any] = {}
    for w in chosen:
        cells = []
        for s in servers:
            cpu = statistics.median(r["cpu_ms"] for r in results[s][w])
            rps = statistics.median(r["rps"] for r in results[s][w])
            table.setdefault(w, {})[s] = {"cpu_ms": cpu, "rps": rps}
            cells.append(f"{cpu:6.2f} ms {rps:6.0f}/s")
        if "bare" in servers:
            bare = table[w]["bare"]["cpu_ms"]
            ratio = " ".join(f"{s}={bare / table[w][s]['cpu_ms']:.2f}x" for s in servers if s != "bare")
        else:
            ratio = ""
        print(f"{w:8} " + " ".join(f"{c:>18}" for c in cells) + "   " + ratio)
    print("RSS MiB after the runs:", {s: round(v) for s, v in rss.items()}, "load", os.getloadavg())
    if args.out:
        args.out.write_text(json.dumps({"table": table, "rounds": results, "rss_mib": rss}, indent=1))


def rss_run(args: argparse.Namespace, urls: dict[str, list[str]]) -> None:
    """The resident memory of `sitrep serve --workers N` (every process) after the workloads."""
    env_cache = os.environ.pop("SITREP_ENTRY_CACHE_MB", None)
    with server("sitrep", args.dsn, 16, workers=args.rss_workers) as (base, pid):
        print(f"idle: {rss_mib(pid):.0f} MiB ({len(_tree(pid))} processes)")
        for w in args.workloads.split(","):
            r = run_wrk(base, pid, urls[w], args.seconds, args.connections)
            print(
                f"{w:5} {r['rps']:6.0f} req/s {r['cpu_ms']:5.2f} ms CPU/req, RSS {rss_mib(pid):.0f} MiB, load {r['load1']:.2f}"
            )
        print(f"after all: {rss_mib(pid):.0f} MiB")
    if env_cache is not None:
        os.environ["SITREP_ENTRY_CACHE_MB"] = env_cache


@contextmanager
def contextmanager_all(
    servers: list[str], spec: dict[str, tuple[str, int]], dsn: str
) -> Iterator[dict[str, tuple[str, int]]]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield {s: stack.enter_context(server(spec[s][0], dsn, spec[s][1])) for s in servers}


_bare: Any = None


def __getattr__(name: str) -> Any:  # `uvicorn bench.uncached:bare`
    if name == "bare":
        global _bare
        if _bare is None:
            _bare = bare_app(os.environ["BARE_DSN"])
        return _bare
    raise AttributeError(name)


if __name__ == "__main__":
    main()
