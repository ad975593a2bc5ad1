"""Queries against the schema: connections, lookups, filters, pagination, errors."""

from __future__ import annotations

import asyncio

from tests.schema.conftest import Runner, World


async def test_latest_entries_with_links(gql: Runner, world: World) -> None:
    data = await gql.data(
        """{ entries(first: 3) { totalCount pageInfo { hasNextPage hasPreviousPage }
             nodes { databaseId headline kind blog { slug } actors { role actor { slug } }
                     locations { slug } sources { slug } } } }"""
    )
    conn = data["entries"]
    assert conn["totalCount"] == 120
    assert conn["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False}
    newest = conn["nodes"][0]
    assert newest["databaseId"] == world.entries[-1]
    assert newest["headline"].startswith("Update 119")
    assert newest["blog"] == {"slug": "day-two"}
    assert {"role": "SPEAKER", "actor": {"slug": "nato"}} in newest["actors"]
    assert newest["locations"] == [{"slug": "moscow"}]


PAGE = """query($first: Int, $after: String, $last: Int, $before: String) {
  entries(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { databaseId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


async def test_walking_forward_then_backward_visits_every_entry_once(gql: Runner, world: World) -> None:
    seen: list[int] = []
    after = None
    while True:
        conn = (await gql.data(PAGE, {"first": 25, "after": after}))["entries"]
        seen += [e["node"]["databaseId"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == sorted(world.entries, reverse=True)

    back: list[int] = []
    before = None
    while True:
        conn = (await gql.data(PAGE, {"last": 30, "before": before}))["entries"]
        back = [e["node"]["databaseId"] for e in conn["edges"]] + back
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert back == seen


async def test_a_cursor_is_refused_under_another_filter(gql: Runner, world: World) -> None:
    first = (await gql.data(PAGE, {"first": 2}))["entries"]
    body = await gql(
        "query($after: String) { entries(after: $after, filter: {kind: [VIDEO]}) { nodes { id } } }",
        {"after": first["pageInfo"]["endCursor"]},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["path"] == ["entries"]


FILTERED = "query($f: EntryFilter) { entries(filter: $f, first: 100) { totalCount nodes { databaseId } } }"


async def _ids(gql: Runner, f: dict[str, object]) -> set[int]:
    conn = (await gql.data(FILTERED, {"f": f}))["entries"]
    assert conn["totalCount"] == len(conn["nodes"])
    return {n["databaseId"] for n in conn["nodes"]}


async def test_filters_take_slugs_database_ids_and_global_ids(gql: Runner, world: World) -> None:
    by_slug = await _ids(gql, {"actor": ["peskov"]})
    node = await gql.data('{ actor(slug: "peskov") { id databaseId } }')
    assert by_slug == await _ids(gql, {"actor": [str(node["actor"]["databaseId"])]})
    assert by_slug == await _ids(gql, {"actor": [node["actor"]["id"]]})
    # peskov speaks in every 5th entry and is mentioned in every 5th (offset 3)
    assert len(by_slug) == 48


async def test_location_includes_places_inside_it(gql: Runner, world: World) -> None:
    crimea = await _ids(gql, {"location": ["crimea"]})
    assert crimea == await _ids(gql, {"location": ["crimea"]}) | await _ids(gql, {"location": ["sevastopol"]})
    assert len(crimea) == 48  # crimea and sevastopol, every 5th entry each


async def test_and_or_not_combine_filters(gql: Runner, world: World) -> None:
    peskov = await _ids(gql, {"actor": ["peskov"]})
    videos = await _ids(gql, {"kind": ["VIDEO"]})
    assert await _ids(gql, {"and": [{"actor": ["peskov"]}, {"kind": ["VIDEO"]}]}) == peskov & videos
    assert await _ids(gql, {"or": [{"actor": ["peskov"]}, {"kind": ["VIDEO"]}]}) == peskov | videos
    assert await _ids(gql, {"actor": ["peskov"], "not": {"kind": ["VIDEO"]}}) == peskov - videos
    both = await _ids(gql, {"actor": ["peskov", "zelensky"], "actorMatch": "ALL"})
    assert both == peskov & await _ids(gql, {"actor": ["zelensky"]})


async def test_node_and_nodes_resolve_global_ids(gql: Runner, world: World) -> None:
    entry = (await gql.data("{ entries(first: 1) { nodes { id headline } } }"))["entries"]["nodes"][0]
    actor = await gql.data('{ actor(slug: "zelensky") { id } }')
    data = await gql.data(
        "query($a: ID!, $e: ID!) { node(id: $a) { __typename id ... on Actor { slug } }"
        ' nodes(ids: [$e, "QWN0b3I6OTk5OQ=="]) { ... on Entry { headline } } }',
        {"a": actor["actor"]["id"], "e": entry["id"]},
    )
    assert data["node"] == {"__typename": "Actor", "id": actor["actor"]["id"], "slug": "zelensky"}
    assert data["nodes"] == [{"headline": entry["headline"]}, None]  # Actor:9999 does not exist


async def test_location_hierarchy(gql: Runner, world: World) -> None:
    data = await gql.data(
        '{ location(slug: "sevastopol") { parent { slug } ancestors { slug } }'
        ' ukraine: location(slug: "ukraine") { children { slug } parent { slug } } }'
    )
    assert data["location"] == {"parent": {"slug": "crimea"}, "ancestors": [{"slug": "ukraine"}, {"slug": "crimea"}]}
    assert data["ukraine"] == {"children": [{"slug": "crimea"}, {"slug": "kyiv"}], "parent": None}


async def test_timeline_counts_per_hour(gql: Runner, world: World) -> None:
    data = await gql.data('{ timeline(interval: HOUR, filter: {blog: ["day-one"]}) { start count } }')
    assert sum(b["count"] for b in data["timeline"]) == 80
    assert data["timeline"][0]["start"] == "2023-09-13T06:00:00Z"


async def test_errors_carry_codes(gql: Runner, world: World) -> None:
    cases = {
        '{ actor(slug: "nobody") { name } }': "NOT_FOUND",
        '{ entry(id: "999999") { headline } }': "NOT_FOUND",
        '{ entry(id: "not an id") { headline } }': "BAD_USER_INPUT",
        '{ entries(filter: {location: ["Not A Slug!"]}) { nodes { id } } }': "BAD_USER_INPUT",
        '{ entries(filter: {blog: ["QWN0b3I6MQ=="]}) { nodes { id } } }': "BAD_USER_INPUT",  # an Actor's id
        "{ entries { nodes { nope } } }": "BAD_USER_INPUT",
        "{ entries(first: 101) { nodes { id } } }": "BAD_USER_INPUT",
        "{ entries(first: -1) { nodes { id } } }": "BAD_USER_INPUT",
        "{ entries(first: 1, last: 1) { nodes { id } } }": "BAD_USER_INPUT",
        "{ entries(": "BAD_USER_INPUT",
    }
    for query, code in cases.items():
        body = await gql(query)
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], (query, body)
        assert "Traceback" not in str(body)


async def test_limits_refuse_before_running(gql: Runner, world: World) -> None:
    deep = "{ entries(first: 1) { nodes { blog { entries(first: 1) { nodes { blog { entries(first: 1) { nodes { blog { entries(first: 1) { nodes { headline } } } } } } } } } } } }"
    costly = "{ actors(first: 100) { nodes { entries(first: 100) { nodes { actors { actor { slug } } } } } } }"
    aliases = "{ " + " ".join(f"a{i}: entries(first: 1) {{ totalCount }}" for i in range(31)) + " }"
    tokens = "{ entries { nodes { " + "headline " * 2100 + "} } }"
    for query in (deep, costly, aliases, tokens):
        await asyncio.sleep(0.05)
        gql.statements.clear()
        body = await gql(query)
        await asyncio.sleep(0.05)  # asyncpg reports a statement to its loggers just after it completes
        assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"], body
        assert "data" not in body
        assert gql.statements == []  # refused before any SQL


async def test_cost_estimate_multiplies_through_nesting(gql: Runner, world: World) -> None:
    outcome = await gql.outcome(
        "{ entries(first: 20) { nodes { actors { actor { entries(first: 5) { totalCount } } } } } }"
    )
    assert outcome.cost == 20 + 20 * 10 + 20 * 10 * 5


async def test_nodes_batch_one_statement_per_type(gql: Runner, world: World) -> None:
    from schema.relay import to_global_id

    ids = [to_global_id("Entry", i) for i in world.entries[:30]] + [
        to_global_id("Actor", a) for a in world.actors.values()
    ]
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    await gql(query, {"ids": ids})  # the connection's first statements also introspect types
    for fast in (True, False):
        await asyncio.sleep(0.05)
        gql.statements.clear()
        body = await gql(query, {"ids": ids}, fast=fast)
        await asyncio.sleep(0.05)
        assert [n["id"] for n in body["data"]["nodes"]] == ids
        assert len(gql.statements) == 2, gql.statements  # entries, actors


async def test_a_lost_database_is_service_unavailable_and_bugs_are_masked(gql: Runner, world: World) -> None:
    from graphql import GraphQLError

    from schema.errors import coded

    await gql.conn.close()
    for fast in (True, False):
        body = await gql("{ entries(first: 1) { nodes { id } } }", fast=fast)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
    bug = coded(GraphQLError("boom", original_error=KeyError("secret_column")))
    assert bug.message == "Unexpected error."
    assert bug.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret_column" not in str(bug.formatted)


async def test_nested_entries_match_the_entry_filter(gql: Runner, world: World) -> None:
    """Actor.entries is entries(filter: {actor}); Location.entries includes places inside it; pages chain."""
    for type_name, field, slug in (
        ("actor", "actor", "peskov"),
        ("source", "source", "tass"),
        ("location", "location", "crimea"),
        ("blog", "blog", "day-two"),
    ):
        for order in ("PUBLISHED_AT_DESC", "UPDATED_AT_ASC"):
            nested = await gql.data(
                f'{{ {type_name}(slug: "{slug}") {{ entries(first: 100, orderBy: {order}, filter: {{kind: [POST]}}) {{ totalCount nodes {{ databaseId }} }} }} }}'
            )
            flat = await gql.data(
                f'{{ entries(first: 100, orderBy: {order}, filter: {{{field}: ["{slug}"], kind: [POST]}}) {{ totalCount nodes {{ databaseId }} }} }}'
            )
            assert nested[type_name]["entries"] == flat["entries"], (type_name, order)
            assert flat["entries"]["totalCount"] > 0
    for type_name, slug in (("actor", "zelensky"), ("location", "ukraine"), ("source", "reuters")):
        query = f'query($after: String) {{ {type_name}(slug: "{slug}") {{ entries(first: 7, after: $after) {{ pageInfo {{ endCursor hasNextPage }} nodes {{ databaseId }} }} }} }}'
        walked: list[int] = []
        after = None
        while True:
            conn = (await gql.data(query, {"after": after}))[type_name]["entries"]
            walked += [n["databaseId"] for n in conn["nodes"]]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        flat = await gql.data(
            f'{{ entries(first: 100, filter: {{{type_name}: ["{slug}"]}}) {{ nodes {{ databaseId }} }} }}'
        )
        assert walked == [n["databaseId"] for n in flat["entries"]["nodes"]], type_name
        assert len(walked) > 14
