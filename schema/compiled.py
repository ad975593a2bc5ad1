"""The compiled path: entry lists answered as REST answers them, straight to bytes.

A query whose root fields are all `entries` connections (and `__typename`), and whose entry
selection reads only what an entry page of REST carries (its own fields, blog id/slug/title,
actors with role, locations, sources, media), is compiled once per document and per value of
the variables its @skip/@include read (schema/plans.py keeps it): for each connection the
parts it asks for (nodes, edges, pageInfo, totalCount, __typename) and, for its entries, a
Python function generated for the selection that turns a `db.rows.Entry` into the response
object (aliases, fragments and directives already resolved: no call per field).

At run time it sends REST's statements (`db.entries.list_keys`, then `linked_by_ids` for the
entries no cache holds) and shares REST's entry cache (api/entry_cache.py). Each entry's
answer is encoded once per selection and kept (`NodeCache`, fed and emptied by the live hub
under the same rules as the entry cache), so a page is its keys and kept bytes, as in REST.
The response is encoded once, the kept bytes spliced in as they are (`msgspec.Raw`).

Anything else (another root field, a field REST's entry does not carry, nested connections,
any error) is not compiled: the fast path (schema/fast.py) and then Strawberry's executor
answer, and all three answer the same bytes (tests/schema/test_fast.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from graphql import FieldNode, FragmentDefinitionNode, GraphQLSchema, OperationDefinitionNode, SelectionSetNode
from graphql.execution.values import VariableValues

from db import entries as db_entries
from db.entries import EntryKey
from db.refs import Heard, Refs
from db.rows import Entry
from schema import query
from schema.context import GraphContext
from schema.fast import Unsupported, Walk, _filter_input
from schema.inputs import entry_filter
from schema.relay import to_global_id

_encode = msgspec.json.Encoder().encode
_decode_entry = msgspec.json.Decoder(Entry).decode
_Raw = msgspec.Raw


# ---------------------------------------------------------------- the projection of an entry

# per GraphQL type: field -> the Python expression of its value, `{v}` the object's variable;
# None: a sub-object, compiled from its own selection
_ENTRY: dict[str, str | None] = {
    "id": "_gid('Entry', {v}.id)",
    "databaseId": "{v}.id",
    "publishedAt": "{v}.published_at",
    "updatedAt": "{v}.updated_at",
    "createdAt": "{v}.created_at",
    "kind": "{v}.kind.upper()",
    "headline": "{v}.headline",
    "body": "{v}.body",
    "blog": None,
    "actors": None,
    "locations": None,
    "sources": None,
    "media": None,
}
_BLOG = {"id": "_gid('Blog', {v}.id)", "databaseId": "{v}.id", "slug": "{v}.slug", "title": "{v}.title"}
_ACTOR = {
    "id": "_gid('Actor', {v}.id)",
    "databaseId": "{v}.id",
    "slug": "{v}.slug",
    "name": "{v}.name",
    "kind": "{v}.kind.upper()",
    "country": "{v}.country",
}
_LOCATION = {
    "id": "_gid('Location', {v}.id)",
    "databaseId": "{v}.id",
    "slug": "{v}.slug",
    "name": "{v}.name",
    "kind": "{v}.kind.upper()",
    "country": "{v}.country",
    "latitude": "{v}.latitude",
    "longitude": "{v}.longitude",
}
_SOURCE = {
    "id": "_gid('Source', {v}.id)",
    "databaseId": "{v}.id",
    "slug": "{v}.slug",
    "name": "{v}.name",
    "kind": "{v}.kind.upper()",
}
_MEDIA: dict[str, str | None] = {
    "position": "{v}.position",
    "kind": "{v}.kind.upper()",
    "url": "{v}.url",
    "caption": "{v}.caption",
    "credit": "{v}.credit",
    "altText": "{v}.alt_text",
    "embed": None,
}
_EMBED = {"author": "{v}.author", "handle": "{v}.handle", "date": "{v}.date", "text": "{v}.text", "url": "{v}.url"}
_ENTRY_ACTOR: dict[str, str | None] = {"role": "{v}.role.upper()", "actor": None}

_TYPES: dict[str, dict[str, str | None]] = {
    "Entry": _ENTRY,
    "Blog": dict(_BLOG),
    "Actor": dict(_ACTOR),
    "Location": dict(_LOCATION),
    "Source": dict(_SOURCE),
    "Media": _MEDIA,
    "Embed": dict(_EMBED),
    "EntryActor": _ENTRY_ACTOR,
}
# (type, field) of a sub-object: its type, whether a list, the attribute, whether it may be null
_CHILDREN: dict[tuple[str, str], tuple[str, bool, str, bool]] = {
    ("Entry", "blog"): ("Blog", False, "blog", False),
    ("Entry", "actors"): ("EntryActor", True, "actors", False),
    ("Entry", "locations"): ("Location", True, "locations", False),
    ("Entry", "sources"): ("Source", True, "sources", False),
    ("Entry", "media"): ("Media", True, "media", False),
    ("EntryActor", "actor"): ("Actor", False, "actor", False),
    ("Media", "embed"): ("Embed", False, "embed", True),
}


class _Source:
    """The text of one generated function, and fresh variable names."""

    def __init__(self) -> None:
        self._names = itertools.count()

    def var(self) -> str:
        return f"v{next(self._names)}"


def _object(walk: Walk, type_name: str, sets: list[SelectionSetNode], v: str, src: _Source) -> str:
    """The expression of the response object of `v` (a row of `type_name`) for `sets`."""
    fields = walk.collect(type_name, sets)
    items = []
    for key, nodes in fields.items():
        name = nodes[0].name.value
        if name == "__typename":
            expr = repr(type_name)
        else:
            known = _TYPES[type_name]
            if name not in known:
                raise Unsupported(f"{type_name}.{name}")
            template = known[name]
            if template is not None:
                expr = template.format(v=v)
            else:
                child, many, attr, nullable = _CHILDREN[type_name, name]
                sub = src.var()
                inner = _object(walk, child, walk.subsets(nodes), sub, src)
                if many:
                    expr = f"[{inner} for {sub} in {v}.{attr}]"
                elif nullable:
                    expr = f"(None if ({sub} := {v}.{attr}) is None else {inner})"
                else:
                    expr = f"(({sub} := {v}.{attr}), {inner})[1]"
        items.append(f"{key!r}: {expr}")
    return "{" + ", ".join(items) + "}"


def compile_entry(walk: Walk, sets: list[SelectionSetNode]) -> tuple[str, Callable[[Entry], bytes]]:
    """The selection's canonical text (what tells projections apart) and the function that
    renders one entry's answer as JSON bytes."""
    body = _object(walk, "Entry", sets, "e", _Source())
    namespace: dict[str, Any] = {"_gid": to_global_id, "_encode": _encode}
    exec(f"def render(e):\n    return _encode({body})\n", namespace)  # noqa: S102 - text built from the schema's own names
    render: Callable[[Entry], bytes] = namespace["render"]
    return body, render


# ---------------------------------------------------------------- connections


@dataclass
class Projection:
    key: str  # canonical: equal selections share kept bytes
    render: Callable[[Entry], bytes]


@dataclass
class Connection:
    """One root `entries` field: its node, and what to answer for each key of its selection."""

    node: FieldNode
    parts: list[tuple[str, str, Any]] = field(default_factory=list)  # (key, kind, detail)
    projections: list[Projection] = field(default_factory=list)
    total: bool = False
    cursors: bool = False


@dataclass
class Program:
    roots: list[tuple[str, Connection | None]]  # None: __typename


def _page_info(walk: Walk, nodes: list[FieldNode]) -> list[tuple[str, str]]:
    fields = walk.collect("PageInfo", walk.subsets(nodes))
    return [(key, n[0].name.value) for key, n in fields.items()]


def _projection(walk: Walk, nodes: list[FieldNode], cache: dict[str, Projection]) -> Projection:
    key, render = compile_entry(walk, walk.subsets(nodes))
    found = cache.get(key)
    if found is None:
        found = cache[key] = Projection(key, render)
    return found


def _connection(walk: Walk, node: FieldNode) -> Connection:
    conn = Connection(node)
    seen: dict[str, Projection] = {}
    for key, nodes in walk.collect("EntryConnection", walk.subsets([node])).items():
        name = nodes[0].name.value
        if name == "__typename":
            conn.parts.append((key, "const", "EntryConnection"))
        elif name == "totalCount":
            conn.total = True
            conn.parts.append((key, "total", None))
        elif name == "pageInfo":
            conn.cursors = True
            conn.parts.append((key, "pageInfo", _page_info(walk, nodes)))
        elif name == "nodes":
            conn.parts.append((key, "nodes", _projection(walk, nodes, seen)))
        elif name == "edges":
            edge: list[tuple[str, str, Any]] = []
            for edge_key, sub in walk.collect("EntryEdge", walk.subsets(nodes)).items():
                edge_name = sub[0].name.value
                if edge_name == "node":
                    edge.append((edge_key, "node", _projection(walk, sub, seen)))
                elif edge_name == "cursor":
                    conn.cursors = True
                    edge.append((edge_key, "cursor", None))
                else:
                    edge.append((edge_key, "const", "EntryEdge"))
            conn.parts.append((key, "edges", edge))
        else:
            raise Unsupported(name)
    conn.projections = list(seen.values())
    return conn


def compile_operation(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
) -> Program | None:
    """The operation's program, or None when the compiled path does not take it. Variables
    matter only to @skip/@include here (arguments are read at run time)."""
    walk = Walk(schema, fragments, variables, None)  # type: ignore[arg-type]  # no context: nothing is fetched
    roots: list[tuple[str, Connection | None]] = []
    try:
        for key, nodes in walk.collect("Query", [operation.selection_set]).items():
            name = nodes[0].name.value
            if name == "__typename":
                roots.append((key, None))
            elif name == "entries" and len(nodes) == 1:
                roots.append((key, _connection(walk, nodes[0])))
            else:
                return None
    except (Unsupported, KeyError):
        return None
    return Program(roots)


# ---------------------------------------------------------------- kept answers per entry


class _Kept:
    __slots__ = ("size", "updated_at", "views")

    def __init__(self, updated_at: datetime) -> None:
        self.updated_at = updated_at
        self.views: dict[str, bytes] = {}
        self.size = 0


class NodeCache(Heard):
    """Each entry's answer per projection, as bytes; dropped as api/entry_cache.py drops entries
    (a change to the entry drops it, to anything else drops everything), bounded by `max_bytes`
    (SITREP_ENTRY_CACHE_MB; 0 keeps nothing), the least recently stored entries going first."""

    def __init__(self, *, max_bytes: int, max_age: float = 300.0) -> None:
        super().__init__(max_age=max_age)
        self.max_bytes = max_bytes
        self.size = 0
        self._items: dict[int, _Kept] = {}

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._items)

    def forget(self, entity: str, entity_id: int) -> None:
        if entity != "entry":
            self.clear()
            return
        self.generation += 1
        item = self._items.pop(entity_id, None)
        if item is not None:
            self.size -= item.size

    def clear(self) -> None:
        super().clear()
        self._items.clear()
        self.size = 0

    def get(self, projection: str, key: EntryKey) -> bytes | None:
        item = self._items.get(key.id)
        if item is None or item.updated_at != key.updated_at:
            return None
        return item.views.get(projection)

    def put(self, projection: str, entry: Entry, body: bytes, generation: int) -> None:
        """Keep `body` if nothing was forgotten since `generation` was read (before the entry was)."""
        if not self.live or generation != self.generation or not self.enabled:
            return
        items = self._items
        item = items.get(entry.id)
        if item is None or item.updated_at != entry.updated_at:
            if item is not None:
                self.size -= item.size
                del items[entry.id]
            item = items[entry.id] = _Kept(entry.updated_at)
        old = item.views.get(projection)
        grown = len(body) - (len(old) if old is not None else 0)
        item.views[projection] = body
        item.size += grown
        self.size += grown
        while self.size > self.max_bytes and items:
            oldest = next(iter(items))
            self.size -= items.pop(oldest).size


# ---------------------------------------------------------------- running


class _State:
    """What the request's app keeps: REST's references and entry cache, and the node cache
    (in process without an app, as in tests: fresh references, nothing kept)."""

    def __init__(self, ctx: GraphContext) -> None:
        state = getattr(getattr(ctx.request, "app", None), "state", None)
        self.refs: Refs = getattr(state, "refs", None) or Refs() if state is not None else Refs()
        self.entries = getattr(state, "entry_cache", None) if state is not None else None
        self.nodes: NodeCache | None = getattr(state, "graphql_nodes", None) if state is not None else None


async def _entries_page(
    conn: asyncpg.Connection, kept: _State, c: Connection, args: dict[str, Any], ctx: GraphContext
) -> dict[str, Any]:
    f = entry_filter(_filter_input(args.get("filter")))
    pa = query.page_args(ctx, f, args)
    page = msgspec.structs.replace(pa.page, count=True) if c.total else pa.page
    found, seq = await db_entries.list_keys(conn, f, pa.sort, page)
    keys: list[EntryKey] = found.rows
    nodes = kept.nodes
    trust_nodes = nodes is not None and nodes.enabled and nodes.trusts(seq)
    views: dict[str, list[bytes | None]] = {}
    missing: set[int] = set()
    for p in c.projections:
        got: list[bytes | None] = [nodes.get(p.key, k) for k in keys] if trust_nodes else [None] * len(keys)  # type: ignore[union-attr]
        views[p.key] = got
        missing.update(k.id for k, b in zip(keys, got, strict=True) if b is None)
    if missing:
        node_generation = nodes.generation if nodes is not None else 0
        entries = await _entries(conn, kept, keys, missing, seq)
        for p in c.projections:
            got = views[p.key]
            for i, k in enumerate(keys):
                if got[i] is None and (entry := entries.get(k.id)) is not None:
                    got[i] = body = p.render(entry)
                    if trust_nodes:
                        nodes.put(p.key, entry, body, node_generation)  # type: ignore[union-attr]
    present = [i for i in range(len(keys)) if all(views[p.key][i] is not None for p in c.projections)]
    cursors = [pa.cursor(found.keys[i]) for i in present] if c.cursors else []
    out: dict[str, Any] = {}
    for key, kind, detail in c.parts:
        if kind == "const":
            out[key] = detail
        elif kind == "total":
            out[key] = found.total
        elif kind == "nodes":
            got = views[detail.key]
            out[key] = [_Raw(got[i]) for i in present]  # type: ignore[arg-type]  # present: none is None
        elif kind == "pageInfo":
            out[key] = {name_key: _page_value(name, found, cursors) for name_key, name in detail}
        else:  # edges
            edges = []
            for j, i in enumerate(present):
                edge: dict[str, Any] = {}
                for edge_key, edge_kind, edge_detail in detail:
                    if edge_kind == "node":
                        edge[edge_key] = _Raw(views[edge_detail.key][i])  # type: ignore[arg-type]
                    elif edge_kind == "cursor":
                        edge[edge_key] = cursors[j]
                    else:
                        edge[edge_key] = edge_detail
                edges.append(edge)
            out[key] = edges
    return out


def _page_value(name: str, found: Any, cursors: list[str]) -> Any:
    if name == "hasNextPage":
        return found.has_next
    if name == "hasPreviousPage":
        return found.has_previous
    if name == "startCursor":
        return cursors[0] if cursors else None
    if name == "endCursor":
        return cursors[-1] if cursors else None
    return "PageInfo"


async def _entries(
    conn: asyncpg.Connection, kept: _State, keys: list[EntryKey], wanted: set[int], seq: int
) -> dict[int, Entry]:
    """The wanted entries of the page: from REST's entry cache where it holds them as current,
    the rest read with their links (and given to that cache, as a REST page would)."""
    out: dict[int, Entry] = {}
    cache = kept.entries
    trusted = cache is not None and cache.enabled and cache.trusts(seq)
    if trusted:
        for k in keys:
            if k.id in wanted and (item := cache.get(k)) is not None:  # type: ignore[union-attr]
                out[k.id] = _decode_entry(item.body)
    rest = [k.id for k in keys if k.id in wanted and k.id not in out]
    if rest:
        generation = cache.generation if cache is not None else 0
        read = await db_entries.linked_by_ids(conn, kept.refs, rest)
        if cache is not None and cache.enabled:
            cache.render(read, generation)
        out.update(read)
    return out


async def execute(
    schema: GraphQLSchema, program: Program, variables: VariableValues, ctx: GraphContext
) -> bytes | None:
    """The response body as JSON bytes, or None when the fast path must answer instead."""
    walk = Walk(schema, {}, variables, ctx)
    kept = _State(ctx)
    data: dict[str, Any] = {}
    try:
        for key, c in program.roots:
            if c is None:
                data[key] = "Query"
                continue
            args = walk.args("Query", c.node)
            data[key] = await ctx.db.run(_entries_page, kept, c, args, ctx)
        return _encode({"data": data})
    except Exception:
        return None
