"""A bare asyncpg + msgspec endpoint serving the same `/v1/entries` pages as sitrep, byte for byte.

    DATABASE_URL=postgresql://postgres@127.0.0.1/sitrep_bench SITREP_SECRET=… \\
        .venv/bin/python bench/bare.py --port 8001 [--workers 2]

The yardstick of issue #10 ("an uncached page near the bare-driver limit"): what one Python
process on uvicorn (uvloop, httptools; the server sitrep runs on) can do with no framework, no
middleware and no cache of rendered entries. It answers only GET /v1/entries with the
parameters the benchmark's URLs use (blog, actor, since, until, q, limit, cursor; one value
each) and GET /ready; anything else is a bare 400 or 404.

What it does per request, and nothing more: parse the query string, check the cursor, run ONE
statement (the page, each entry's link ids and media rows: the statement shape sitrep's
`db.entries` uses), build each entry as sitrep's `db.rows.Entry` msgspec struct from
references held in memory (all blogs, actors, locations and sources, read once at start: the
benchmark database does not change), encode, and send. Like sitrep it encodes each entry
separately and tags the page with the XXH3-128 of the body's bytes, as sitrep's caching
middleware does, so that the ETag is sitrep's too.

Byte-identical with sitrep, body and the headers a client uses (Content-Type, ETag, Link,
Cache-Control, Vary, the CORS pair): the cursors are sitrep's (`db.page.Cursors`, HMAC over
the sort, a hash of the `EntryFilter` the request states, and the key), with the same secret.
No rate limit, so no RateLimit-* headers. tests/bench/test_bare.py compares the two on every
workload of bench/compare.py, so a change to sitrep's pages that this file does not follow
fails there.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
import msgspec
from xxhash import xxh3_128_digest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db.filters import EntryFilter
from db.page import Cursors
from db.rows import ActorRef, BlogRef, Embed, Entry, EntryActor, LocationRef, Media, SourceRef

APP_NAME = "sitrep-bare"
SORT = "-published_at"
MAX_LIMIT = 200
_encode = msgspec.json.Encoder().encode
_PARAMS = frozenset({"blog", "actor", "since", "until", "q", "limit", "cursor"})

HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"public, max-age=15"),
    (b"vary", b"Accept, Accept-Encoding, Sitrep-Min-Seq"),
    (b"access-control-allow-origin", b"*"),
    (
        b"access-control-expose-headers",
        b"RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, Link, ETag, Location, WWW-Authenticate,"
        b" Sitrep-Seq",
    ),
]


class PageInfo(msgspec.Struct, omit_defaults=True):
    limit: int
    next_cursor: str | None


_ENTRY = "e.id, e.blog_id, e.published_at, e.updated_at, e.created_at, e.kind, e.headline, e.body"
_LINKED = (
    "SELECT p.*, a.ids AS actor_ids, a.speaker,"
    " ARRAY(SELECT el.location_id FROM entry_locations el WHERE el.entry_id = p.id) AS location_ids,"
    " ARRAY(SELECT es.source_id FROM entry_sources es WHERE es.entry_id = p.id) AS source_ids,"
    " ARRAY(SELECT m FROM media m WHERE m.entry_id = p.id ORDER BY m.position) AS media"
    " FROM ({page}) p LEFT JOIN LATERAL ("
    "SELECT array_agg(ea.actor_id) AS ids, array_agg(ea.role = 'speaker') AS speaker"
    " FROM entry_actors ea WHERE ea.entry_id = p.id) a ON true"
    " ORDER BY p.published_at DESC, p.id DESC"
)


class BadRequest(Exception):
    pass


class Bare:
    """The ASGI app. `start()` opens the pool and reads the references (uvicorn's lifespan does)."""

    def __init__(self, dsn: str, secret: str, pool_max: int = 10) -> None:
        self.dsn, self.pool_max = dsn, pool_max
        self.cursors = Cursors(secret)
        self.pool: asyncpg.Pool | None = None
        self.blogs: dict[int, BlogRef] = {}
        self.blog_ids: dict[str, int] = {}
        self.actors: dict[int, tuple[tuple[str, int], EntryActor, EntryActor]] = {}
        self.actor_ids: dict[str, int] = {}
        self.locations: dict[int, LocationRef] = {}
        self.sources: dict[int, SourceRef] = {}
        self.statements: dict[tuple[bool, bool, bool, bool, bool], str] = {}

    async def start(self) -> None:
        async def no_reset(conn: asyncpg.Connection) -> None:  # no transaction is ever left open
            return None

        self.pool = await asyncpg.create_pool(
            self.dsn,
            min_size=2,
            max_size=self.pool_max,
            reset=no_reset,
            server_settings={"application_name": APP_NAME},
        )
        async with self.pool.acquire() as conn:
            for r in await conn.fetch("SELECT id, slug, title FROM blogs"):
                self.blogs[r["id"]] = BlogRef(id=r["id"], slug=r["slug"], title=r["title"])
                self.blog_ids[r["slug"]] = r["id"]
            for r in await conn.fetch("SELECT id, slug, name, kind, country FROM actors"):
                ref = ActorRef(id=r["id"], slug=r["slug"], name=r["name"], kind=r["kind"], country=r["country"])
                self.actors[r["id"]] = (
                    (ref.name, ref.id),
                    EntryActor(role="speaker", actor=ref),
                    EntryActor(role="mentioned", actor=ref),
                )
                self.actor_ids[r["slug"]] = r["id"]
            for r in await conn.fetch(
                "SELECT id, slug, name, kind, country, latitude, longitude, parent_id FROM locations"
            ):
                self.locations[r["id"]] = LocationRef(**dict(r))
            for r in await conn.fetch("SELECT id, slug, name, kind FROM sources"):
                self.sources[r["id"]] = SourceRef(**dict(r))

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    # ---------------------------------------------------------------- ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await self.start()
                    except Exception as exc:
                        await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/ready":
            await _send(send, 200, b"ok", [(b"content-type", b"text/plain")])
        elif path != "/v1/entries" or scope["method"] != "GET":
            await _send(send, 404, b"not found", [])
        else:
            try:
                body, headers = await self.page(scope)
            except BadRequest as exc:
                await _send(send, 400, str(exc).encode(), [])
            else:
                await _send(send, 200, body, headers)

    # ---------------------------------------------------------------- the page

    async def page(self, scope: dict[str, Any]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        items = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        params = dict(items)
        if len(params) != len(items) or not params.keys() <= _PARAMS:
            raise BadRequest("bare.py answers one value each of " + ", ".join(sorted(_PARAMS)))
        blog, actor, q = params.get("blog"), params.get("actor"), params.get("q")
        since, until = _when(params.get("since")), _when(params.get("until"))
        limit = int(params.get("limit", "50"))
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest("limit")
        # the filter as sitrep states it from the request (its hash is in the cursor)
        flt = EntryFilter(
            blog=(blog,) if blog else (), actor=(actor,) if actor else (), since=since, until=until, q=q or None
        )
        after = None
        if "cursor" in params:
            try:
                after = self.cursors.decode(params["cursor"], sort=SORT, filter=flt, value_type=datetime)
            except Exception as exc:
                raise BadRequest("cursor") from exc
        values: list[Any] = []
        conds: list[str] = []
        on = "ea.published_at" if actor else "e.published_at"
        key = "ea.entry_id" if actor else "e.id"

        def arg(value: Any) -> str:
            values.append(value)
            return f"${len(values)}"

        if actor:
            actor_id = self.actor_ids.get(actor)
            if actor_id is None:
                raise BadRequest("actor")
            conds.append(f"ea.actor_id = {arg(actor_id)}")
        if blog:
            blog_id = self.blog_ids.get(blog)
            if blog_id is None:
                raise BadRequest("blog")
            conds.append(f"e.blog_id = {arg(blog_id)}")
        if since is not None:
            conds.append(f"{on} >= {arg(since)}")
        if until is not None:
            conds.append(f"{on} < {arg(until)}")
        if q:
            conds.append(f"e.search @@ websearch_to_tsquery('english', {arg(q)}::text)")
        if after is not None:
            conds.append(f"({on}, {key}) < ({arg(after[0])}, {arg(after[1])})")
        source = "entry_actors ea JOIN entries e ON e.id = ea.entry_id" if actor else "entries e"
        where = " WHERE " + " AND ".join(conds) if conds else ""
        page_sql = f"SELECT {_ENTRY} FROM {source}{where} ORDER BY {on} DESC, {key} DESC LIMIT {arg(limit + 1)}"
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            records = await conn.fetch(_LINKED.format(page=page_sql), *values)

        more = len(records) > limit
        records = records[:limit]
        parts = [_encode(self.entry(r)) for r in records]
        last = records[-1] if more else None
        token = self.cursors.encode((last["published_at"], last["id"]), sort=SORT, filter=flt) if last else None
        tail = _encode(PageInfo(limit=limit, next_cursor=token))
        body = b'{"data":[' + b",".join(parts) + b'],"page":' + tail + b"}"
        tag = base64.urlsafe_b64encode(xxh3_128_digest(body)).rstrip(b"=")
        headers = [*HEADERS, (b"etag", b'"' + tag + b'"')]
        if token is not None:
            host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
            query = urlencode([(k, v) for k, v in items if k != "cursor"] + [("cursor", token)])
            headers.append((b"link", f'<http://{host}/v1/entries?{query}>; rel="next"'.encode()))
        return body, headers

    def entry(self, r: asyncpg.Record) -> Entry:
        actor_ids, speaker = r["actor_ids"], r["speaker"]
        actors: list[EntryActor] = []
        if actor_ids:
            table = self.actors
            ranked = sorted(
                (not says, table[i][0], table[i][1 if says else 2]) for i, says in zip(actor_ids, speaker, strict=True)
            )
            actors = [link for _, _, link in ranked]
        locations = sorted((self.locations[i] for i in r["location_ids"]), key=_name_id)
        sources = sorted((self.sources[i] for i in r["source_ids"]), key=_name_id)
        return Entry(
            id=r["id"],
            blog=self.blogs[r["blog_id"]],
            published_at=r["published_at"],
            updated_at=r["updated_at"],
            created_at=r["created_at"],
            kind=r["kind"],
            headline=r["headline"],
            body=r["body"],
            actors=actors,
            locations=locations,
            sources=sources,
            media=[_media(m) for m in r["media"]],
        )


def _name_id(ref: LocationRef | SourceRef) -> tuple[str, int]:
    return (ref.name, ref.id)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest("since/until") from exc


def _media(m: asyncpg.Record) -> Media:
    author, handle, day, text, url = (
        m["embed_author"],
        m["embed_handle"],
        m["embed_date"],
        m["embed_text"],
        m["embed_url"],
    )
    embed = None
    if author is not None or handle is not None or day is not None or text is not None or url is not None:
        embed = Embed(author=author, handle=handle, date=day, text=text, url=url)
    return Media(
        position=m["position"],
        kind=m["kind"],
        url=m["url"],
        caption=m["caption"],
        credit=m["credit"],
        alt_text=m["alt_text"],
        embed=embed,
    )


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def app() -> Bare:
    """uvicorn's factory (each worker builds its own)."""
    return Bare(os.environ["DATABASE_URL"], os.environ["SITREP_SECRET"], int(os.environ.get("SITREP_POOL_MAX", "10")))


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="bare asyncpg + msgspec /v1/entries (see the docstring)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "bare:app",
        factory=True,
        app_dir=str(Path(__file__).parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
