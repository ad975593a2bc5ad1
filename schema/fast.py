"""The fast execution path for data queries: graphql-core costs microseconds per field per row.

Instead of a resolver call per field of every row, this walks the validated selection set
once per response level (fragments, aliases, variables, @skip/@include, __typename), fetches
each relation for the whole level with the same batched functions the resolvers use, and
projects rows into plain dicts with a getter per selected field. It answers exactly what
Strawberry's executor answers (tests/schema/test_fast.py runs a corpus through both).

Anything it does not know (another root field, an error of any kind) makes it return None,
and the request runs on Strawberry's executor instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
)
from graphql.execution.values import VariableValues, get_argument_values, get_directive_values

from db import entries as db_entries
from db import graph
from db import timeline as db_timeline
from db.page import Paged
from schema import query
from schema.catalog import CatalogPage
from schema.context import GraphContext
from schema.inputs import (
    ActorFilterInput,
    ActorMatch,
    BBoxInput,
    BlogFilterInput,
    EntryFilterInput,
    LocationFilterInput,
    NearInput,
    SourceFilterInput,
    entry_filter,
)
from schema.relay import to_global_id
from schema.scalars import rfc3339  # the DateTime scalar's form, as Strawberry's path gives it
from schema.types import NODE_TYPES, EntryKind

Fields = dict[str, list[FieldNode]]  # response key -> the field nodes merged under it


class Unsupported(Exception):
    """A construct this path does not handle: the plain executor runs the request."""


class Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
        ctx: GraphContext,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.ctx = ctx

    # ------------------------------------------------------------ selections

    def _included(self, node: SelectionNode) -> bool:
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and include.get("if") is False)

    def _applies(self, condition: str | None, type_name: str) -> bool:
        if condition is None or condition == type_name:
            return True
        object_type = self.schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        return any(i.name == condition for i in object_type.interfaces)

    def collect(self, type_name: str, sets: list[SelectionSetNode]) -> Fields:
        fields: Fields = {}
        visited: set[str] = set()

        def visit(selection_set: SelectionSetNode) -> None:
            for node in selection_set.selections:
                if not self._included(node):
                    continue
                if isinstance(node, FieldNode):
                    key = node.alias.value if node.alias else node.name.value
                    fields.setdefault(key, []).append(node)
                elif isinstance(node, InlineFragmentNode):
                    condition = node.type_condition.name.value if node.type_condition else None
                    if self._applies(condition, type_name):
                        visit(node.selection_set)
                elif isinstance(node, FragmentSpreadNode):
                    name = node.name.value
                    if name in visited:
                        continue
                    visited.add(name)
                    fragment = self.fragments[name]
                    if self._applies(fragment.type_condition.name.value, type_name):
                        visit(fragment.selection_set)

        for s in sets:
            visit(s)
        return fields

    def subsets(self, nodes: list[FieldNode]) -> list[SelectionSetNode]:
        return [n.selection_set for n in nodes if n.selection_set is not None]

    def args(self, type_name: str, node: FieldNode) -> dict[str, Any]:
        object_type = self.schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        return get_argument_values(object_type.fields[node.name.value], node, self.variables)

    # ------------------------------------------------------------ objects

    async def objects(self, type_name: str, rows: list[Any], sets: list[SelectionSetNode]) -> list[dict[str, Any]]:
        """Every row of one level as its response object; relations fetched once for the level."""
        fields = self.collect(type_name, sets)
        plans: list[tuple[str, Callable[[Any], Any]]] = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                plans.append((key, _const(type_name)))
                continue
            scalar = SCALARS.get(type_name, {}).get(name)
            if scalar is not None:
                plans.append((key, scalar))
                continue
            relation = RELATIONS.get((type_name, name))
            if relation is None:
                raise Unsupported(f"{type_name}.{name}")
            plans.append((key, await relation(self, rows, nodes)))
        out = []
        for row in rows:
            out.append({key: get(row) for key, get in plans})
        return out

    async def connection(
        self,
        type_name: str,
        pages: list[Paged[Any]],
        cursor: Callable[[Any], str],
        counts: Callable[[], Awaitable[list[int]]],
        nodes: list[FieldNode],
    ) -> list[dict[str, Any]]:
        """Connection objects for pages of one level (a root list, or every parent's entries)."""
        fields = self.collect(f"{type_name}Connection", self.subsets(nodes))
        all_rows = [r for p in pages for r in p.rows]
        parts: list[tuple[str, Callable[[int, Paged[Any], list[str]], Any]]] = []
        offsets = []
        total = 0
        for p in pages:
            offsets.append(total)
            total += len(p.rows)
        for key, subnodes in fields.items():
            name = subnodes[0].name.value
            if name == "__typename":
                parts.append((key, _const3(f"{type_name}Connection")))
            elif name == "totalCount":
                parts.append((key, _indexed(await counts())))
            elif name == "pageInfo":
                parts.append((key, self._page_info(subnodes)))
            elif name == "nodes":
                objs = await self.objects(type_name, all_rows, self.subsets(subnodes))
                parts.append((key, _slicer(objs, offsets)))
            elif name == "edges":
                parts.append((key, await self._edges(type_name, all_rows, offsets, subnodes)))
            else:
                raise Unsupported(name)
        wants_cursors = any(n[0].name.value in ("edges", "pageInfo") for n in fields.values())
        out = []
        for i, p in enumerate(pages):
            cursors = [cursor(k) for k in p.keys] if wants_cursors else []
            out.append({key: part(i, p, cursors) for key, part in parts})
        return out

    def _page_info(self, nodes: list[FieldNode]) -> Callable[[int, Paged[Any], list[str]], Any]:
        fields = self.collect("PageInfo", self.subsets(nodes))
        getters: dict[str, Callable[[Paged[Any], list[str]], Any]] = {
            "hasNextPage": lambda p, c: p.has_next,
            "hasPreviousPage": lambda p, c: p.has_previous,
            "startCursor": lambda p, c: c[0] if c else None,
            "endCursor": lambda p, c: c[-1] if c else None,
            "__typename": lambda p, c: "PageInfo",
        }
        plan = [(key, getters[n[0].name.value]) for key, n in fields.items()]
        return lambda i, p, c: {key: get(p, c) for key, get in plan}

    async def _edges(
        self, type_name: str, rows: list[Any], offsets: list[int], nodes: list[FieldNode]
    ) -> Callable[[int, Paged[Any], list[str]], Any]:
        fields = self.collect(f"{type_name}Edge", self.subsets(nodes))
        plan: list[tuple[str, str, list[dict[str, Any]] | None]] = []
        for key, subnodes in fields.items():
            name = subnodes[0].name.value
            if name == "node":
                plan.append((key, name, await self.objects(type_name, rows, self.subsets(subnodes))))
            elif name in ("cursor", "__typename"):
                plan.append((key, name, None))
            else:
                raise Unsupported(name)
        edge_type = f"{type_name}Edge"

        def edges(i: int, p: Paged[Any], cursors: list[str]) -> list[dict[str, Any]]:
            start = offsets[i]
            out = []
            for j in range(len(p.rows)):
                edge: dict[str, Any] = {}
                for key, name, objs in plan:
                    if objs is not None:
                        edge[key] = objs[start + j]
                    else:
                        edge[key] = cursors[j] if name == "cursor" else edge_type
                out.append(edge)
            return out

        return edges


def _const(value: Any) -> Callable[[Any], Any]:
    return lambda _row: value


def _const3(value: Any) -> Callable[[int, Paged[Any], list[str]], Any]:
    return lambda _i, _p, _c: value


def _indexed(values: list[int]) -> Callable[[int, Paged[Any], list[str]], Any]:
    return lambda i, _p, _c: values[i]


def _slicer(objs: list[Any], offsets: list[int]) -> Callable[[int, Paged[Any], list[str]], Any]:
    return lambda i, p, _c: objs[offsets[i] : offsets[i] + len(p.rows)]


# ---------------------------------------------------------------- scalar getters (as Strawberry serializes)


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _enum(value: str) -> str:
    return value.upper()  # every enum's GraphQL name is its database value upper-cased


def _attr(name: str) -> Callable[[Any], Any]:
    def get(row: Any) -> Any:
        return getattr(row, name)

    return get


def _common(type_name: str) -> dict[str, Callable[[Any], Any]]:
    return {
        "id": lambda r: to_global_id(type_name, r.id),
        "databaseId": _attr("id"),
        "createdAt": lambda r: rfc3339(r.created_at),
        "updatedAt": lambda r: rfc3339(r.updated_at),
    }


def _hero(key: str) -> Callable[[Any], Any]:
    return lambda h: h.get(key)


SCALARS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "Entry": {
        **_common("Entry"),
        "publishedAt": lambda r: rfc3339(r.published_at),
        "kind": lambda r: _enum(r.kind),
        "headline": _attr("headline"),
        "body": _attr("body"),
    },
    "Blog": {
        **_common("Blog"),
        "slug": _attr("slug"),
        "title": _attr("title"),
        "standfirst": _attr("standfirst"),
        "status": lambda r: _enum(r.status),
        "authors": _attr("authors"),
        "summary": _attr("summary"),
        "sourceUrl": _attr("source_url"),
        "publishedAt": lambda r: rfc3339(r.published_at),
        "entryCount": _attr("entry_count"),
    },
    "Actor": {
        **_common("Actor"),
        "slug": _attr("slug"),
        "name": _attr("name"),
        "kind": lambda r: _enum(r.kind),
        "aliases": _attr("aliases"),
        "country": _attr("country"),
        "description": _attr("description"),
        "entryCount": _attr("entry_count"),
    },
    "Location": {
        **_common("Location"),
        "slug": _attr("slug"),
        "name": _attr("name"),
        "kind": lambda r: _enum(r.kind),
        "latitude": lambda r: float(r.latitude),
        "longitude": lambda r: float(r.longitude),
        "aliases": _attr("aliases"),
        "country": _attr("country"),
        "description": _attr("description"),
        "entryCount": _attr("entry_count"),
    },
    "Source": {
        **_common("Source"),
        "slug": _attr("slug"),
        "name": _attr("name"),
        "kind": lambda r: _enum(r.kind),
        "url": _attr("url"),
        "aliases": _attr("aliases"),
        "description": _attr("description"),
        "entryCount": _attr("entry_count"),
    },
    "Media": {
        "position": _attr("position"),
        "kind": lambda r: _enum(r.kind),
        "url": _attr("url"),
        "caption": _attr("caption"),
        "credit": _attr("credit"),
        "altText": _attr("alt_text"),
    },
    "Embed": {
        "author": _attr("author"),
        "handle": _attr("handle"),
        "date": lambda r: _iso(r.date),
        "text": _attr("text"),
        "url": _attr("url"),
    },
    "Image": {
        "url": _hero("url"),
        "caption": _hero("caption"),
        "credit": _hero("credit"),
        "altText": _hero("alt_text"),
    },
    "EntryActor": {"role": lambda r: _enum(r.role)},
    "TimelineBucket": {"start": lambda r: rfc3339(r.start), "count": _attr("count")},
}


# ---------------------------------------------------------------- relations: one fetch per level

Relation = Callable[[Walk, list[Any], list[FieldNode]], Awaitable[Callable[[Any], Any]]]


def _many(fetch: Callable[..., Awaitable[dict[int, list[Any]]]], child: str, key: Callable[[Any], int]) -> Relation:
    async def relation(walk: Walk, rows: list[Any], nodes: list[FieldNode]) -> Callable[[Any], Any]:
        found = await walk.ctx.db.run(fetch, [key(r) for r in rows])
        children = [c for r in rows for c in found.get(key(r), ())]
        objs = iter(await walk.objects(child, children, walk.subsets(nodes)))
        per_row = {id(r): [next(objs) for _ in found.get(key(r), ())] for r in rows}
        return lambda r: per_row[id(r)]

    return relation


def _one(table: str, child: str, key: Callable[[Any], int | None]) -> Relation:
    async def relation(walk: Walk, rows: list[Any], nodes: list[FieldNode]) -> Callable[[Any], Any]:
        ids = [k for r in rows if (k := key(r)) is not None]
        found = await walk.ctx.db.run(graph.by_ids, table, ids)
        children = list(found.values())
        objs: dict[int | None, Any] = dict(
            zip((c.id for c in children), await walk.objects(child, children, walk.subsets(nodes)), strict=True)
        )
        return lambda r: objs.get(key(r))

    return relation


def _nested(obj: Callable[[Any], Any], child: str) -> Relation:
    """A field whose value is a sub-object of the row itself (an embed, a hero image, an actor link)."""

    async def relation(walk: Walk, rows: list[Any], nodes: list[FieldNode]) -> Callable[[Any], Any]:
        present = [o for r in rows if (o := obj(r)) is not None]
        objs = dict(zip(map(id, present), await walk.objects(child, present, walk.subsets(nodes)), strict=True))
        return lambda r: None if (o := obj(r)) is None else objs[id(o)]

    return relation


def _filter_input(value: dict[str, Any] | None) -> EntryFilterInput | None:
    """The coerced `filter` argument as the input object Strawberry would build."""
    if value is None:
        return None
    bbox = value.get("bbox")
    return EntryFilterInput(
        blog=value.get("blog"),
        actor=value.get("actor"),
        actor_match=value.get("actorMatch") or ActorMatch.ANY,
        location=value.get("location"),
        source=value.get("source"),
        published_after=value.get("publishedAfter"),
        published_before=value.get("publishedBefore"),
        updated_after=value.get("updatedAfter"),
        search=value.get("search"),
        kind=[EntryKind(k) for k in value["kind"]] if value.get("kind") else None,
        bbox=None
        if bbox is None
        else BBoxInput(min_lon=bbox["minLon"], min_lat=bbox["minLat"], max_lon=bbox["maxLon"], max_lat=bbox["maxLat"]),
        and_=[f for v in value["and"] if (f := _filter_input(v))] if value.get("and") is not None else None,
        or_=[f for v in value["or"] if (f := _filter_input(v))] if value.get("or") is not None else None,
        not_=_filter_input(value.get("not")),
    )


def _entries_of(parent: graph.Parent, type_name: str) -> Relation:
    async def relation(walk: Walk, rows: list[Any], nodes: list[FieldNode]) -> Callable[[Any], Any]:
        if len(nodes) > 1 and any(walk.args(type_name, n) != walk.args(type_name, nodes[0]) for n in nodes):
            raise Unsupported("merged connection fields with different arguments")
        args = walk.args(type_name, nodes[0])
        ids = [r.id for r in rows]
        f = entry_filter(_filter_input(args.get("filter")))
        page_args = query.page_args(walk.ctx, f, args)
        pages = await query.nested_pages(walk.ctx, parent, ids, f, page_args)

        async def counts() -> list[int]:
            got = await query.nested_counts(walk.ctx, parent, ids, f)
            return [got.get(i, 0) for i in ids]

        objs = await walk.connection("Entry", pages, page_args.cursor, counts, nodes)
        per_row = dict(zip(ids, objs, strict=True))
        return lambda r: per_row[r.id]

    return relation


RELATIONS: dict[tuple[str, str], Relation] = {
    ("Entry", "blog"): _one("blogs", "Blog", lambda r: r.blog_id),
    ("Entry", "actors"): _many(graph.entry_actors, "EntryActor", lambda r: r.id),
    ("Entry", "locations"): _many(graph.entry_locations, "Location", lambda r: r.id),
    ("Entry", "sources"): _many(graph.entry_sources, "Source", lambda r: r.id),
    ("Entry", "media"): _many(db_entries.media_of, "Media", lambda r: r.id),
    ("EntryActor", "actor"): _nested(lambda r: r.actor, "Actor"),
    ("Media", "embed"): _nested(lambda r: r.embed, "Embed"),
    ("Blog", "heroImage"): _nested(lambda r: r.hero_image, "Image"),
    ("Location", "parent"): _one("locations", "Location", lambda r: r.parent_id),
    ("Location", "ancestors"): _many(graph.location_ancestors, "Location", lambda r: r.id),
    ("Location", "children"): _many(graph.location_children, "Location", lambda r: r.id),
    ("Blog", "entries"): _entries_of("blog", "Blog"),
    ("Actor", "entries"): _entries_of("actor", "Actor"),
    ("Location", "entries"): _entries_of("location", "Location"),
    ("Source", "entries"): _entries_of("source", "Source"),
}


# ---------------------------------------------------------------- roots


async def _root_entries(walk: Walk, node: FieldNode, args: dict[str, Any]) -> Any:
    f = entry_filter(_filter_input(args.get("filter")))
    page_args = query.page_args(walk.ctx, f, args)
    found = await walk.ctx.db.run(db_entries.list_entries, f, page_args.sort, page_args.page)

    async def counts() -> list[int]:
        return [await query.count_entries(walk.ctx, f)]

    (obj,) = await walk.connection("Entry", [found], page_args.cursor, counts, [node])
    return obj


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


_NESTED_INPUTS: dict[str, type] = {"bbox": BBoxInput, "near": NearInput}


def _input(cls: type, value: dict[str, Any] | None) -> Any:
    """A coerced catalog filter argument (flat, but for bbox/near) as its Strawberry input object."""
    if value is None:
        return None
    fields = {}
    for key, v in value.items():
        nested = _NESTED_INPUTS.get(key)
        fields[_snake(key)] = _input(nested, v) if nested is not None and v is not None else v
    return cls(**fields)


_CATALOG_INPUTS: dict[str, type] = {
    "Blog": BlogFilterInput,
    "Actor": ActorFilterInput,
    "Location": LocationFilterInput,
    "Source": SourceFilterInput,
}


def _root_catalog(type_name: str) -> Callable[[Walk, FieldNode, dict[str, Any]], Awaitable[Any]]:
    async def root(walk: Walk, node: FieldNode, args: dict[str, Any]) -> Any:
        given = _input(_CATALOG_INPUTS[type_name], args.get("filter"))
        order = args.get("orderBy")
        sort = order.value if order is not None else "-published_at"
        cp = CatalogPage(walk.ctx, type_name, given.to_filter() if given is not None else None, sort, args)
        found = await cp.fetch()

        async def counts() -> list[int]:
            return [await cp.count()]

        (obj,) = await walk.connection(type_name, [found], cp.cursor, counts, [node])
        return obj

    return root


def _root_lookup(type_name: str) -> Callable[[Walk, FieldNode, dict[str, Any]], Awaitable[Any]]:
    async def root(walk: Walk, node: FieldNode, args: dict[str, Any]) -> Any:
        ref = query.lookup_ref(type_name, args.get("id"), args.get("slug"))
        row = await query.one(walk.ctx, type_name, ref)
        (obj,) = await walk.objects(type_name, [row], walk.subsets([node]))
        return obj

    return root


async def _node_objects(walk: Walk, ids: list[str], nodes: list[FieldNode]) -> list[dict[str, Any] | None]:
    parsed = [query.parse_node_id(i) for i in ids]
    out: list[dict[str, Any] | None] = [None] * len(ids)
    for type_name, (table, _) in NODE_TYPES.items():
        wanted = [(n, db_id) for n, (t, db_id) in enumerate(parsed) if t == type_name]
        if not wanted:
            continue
        found = await walk.ctx.db.run(graph.by_ids, table, [db_id for _, db_id in wanted])
        present = [(n, found[db_id]) for n, db_id in wanted if db_id in found]
        objs = await walk.objects(type_name, [row for _, row in present], walk.subsets(nodes))
        for (n, _), obj in zip(present, objs, strict=True):
            out[n] = obj
    return out


async def _root_node(walk: Walk, node: FieldNode, args: dict[str, Any]) -> Any:
    (obj,) = await _node_objects(walk, [str(args["id"])], [node])
    return obj


async def _root_nodes(walk: Walk, node: FieldNode, args: dict[str, Any]) -> Any:
    return await _node_objects(walk, [str(i) for i in args["ids"]], [node])


async def _root_timeline(walk: Walk, node: FieldNode, args: dict[str, Any]) -> Any:
    f = entry_filter(_filter_input(args.get("filter")))
    buckets = await walk.ctx.db.run(db_timeline.timeline, f, args["interval"].value)
    return await walk.objects("TimelineBucket", buckets, walk.subsets([node]))


ROOTS: dict[str, Callable[[Walk, FieldNode, dict[str, Any]], Awaitable[Any]]] = {
    "entries": _root_entries,
    "timeline": _root_timeline,
    "blogs": _root_catalog("Blog"),
    "actors": _root_catalog("Actor"),
    "locations": _root_catalog("Location"),
    "sources": _root_catalog("Source"),
    "entry": _root_lookup("Entry"),
    "blog": _root_lookup("Blog"),
    "actor": _root_lookup("Actor"),
    "location": _root_lookup("Location"),
    "source": _root_lookup("Source"),
    "node": _root_node,
    "nodes": _root_nodes,
}


async def execute(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
    ctx: GraphContext,
) -> dict[str, Any] | None:
    """The response body, or None when the plain executor must answer."""
    walk = Walk(schema, fragments, variables, ctx)
    try:
        fields = walk.collect("Query", [operation.selection_set])
        data: dict[str, Any] = {}
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                data[key] = "Query"
                continue
            root = ROOTS.get(name)
            if root is None or len(nodes) > 1:
                return None
            data[key] = await root(walk, nodes[0], walk.args("Query", nodes[0]))
    except Exception:
        return None
    return {"data": data}
