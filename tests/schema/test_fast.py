"""The compiled and fast paths answer exactly what Strawberry's executor answers, over a corpus of queries."""

from __future__ import annotations

from typing import Any

from tests.schema.conftest import Runner, World

ENTRY_FIELDS = """
  id databaseId __typename headline body kind publishedAt updatedAt createdAt
  blog { id slug title status entryCount heroImage { url } authors summary standfirst sourceUrl }
  actors { role actor { id slug name kind aliases country description entryCount __typename } }
  locations { id slug name kind latitude longitude country parent { slug } ancestors { slug } children { slug } }
  sources { id slug name kind url entryCount }
  media { position kind url caption credit altText embed { author handle date text url } }
"""

CORPUS: list[tuple[str, dict[str, Any] | None]] = [
    ("{ entries { totalCount nodes { " + ENTRY_FIELDS + " } } }", None),
    (
        "{ entries(first: 100) { nodes { headline actors { role actor { slug } } locations { slug } sources { slug } } } }",
        None,
    ),
    (
        "{ __typename latest: entries(first: 2) { edges { cursor node { databaseId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } oldest: entries(first: 2, orderBy: PUBLISHED_AT_ASC) { nodes { headline } } }",
        None,
    ),
    (
        "query Q($n: Int, $f: EntryFilter, $withBlog: Boolean!) { entries(first: $n, filter: $f) { nodes { ...E blog @include(if: $withBlog) { slug } } } } fragment E on Entry { headline kind alias: databaseId ... on Node { id } }",
        {"n": 5, "f": {"kind": ["VIDEO"]}, "withBlog": False},
    ),
    (
        "query($f: EntryFilter) { entries(filter: $f, first: 10) { totalCount nodes { headline } } }",
        {"f": {"or": [{"actor": ["peskov"]}, {"location": ["crimea"]}], "not": {"kind": ["VIDEO"]}}},
    ),
    (
        '{ entries(filter: {search: "drone", publishedAfter: "2023-09-13T10:00:00Z"}, last: 3) { nodes { headline publishedAt } pageInfo { hasNextPage hasPreviousPage } } }',
        None,
    ),
    (
        "{ entries(first: 2) { nodes { actors { actor { slug entries(first: 2) { totalCount nodes { headline actors { actor { slug } } } } } } } } }",
        None,
    ),
    (
        "{ entries(first: 3) { nodes { locations { slug entries(first: 3, filter: {kind: [POST]}) { edges { cursor node { headline } } pageInfo { hasNextPage endCursor } } } } } }",
        None,
    ),
    ("{ entries(first: 3) { nodes { blog { entries(last: 2) { nodes { headline } } } } } }", None),
    ("{ entries(first: 3) { nodes { headline @skip(if: true) kind databaseId } } }", None),
    (
        "{ actors(first: 3, orderBy: ENTRY_COUNT_DESC) { totalCount edges { cursor node { slug entryCount } } pageInfo { endCursor hasNextPage } } }",
        None,
    ),
    (
        '{ locations(filter: {within: ["ukraine"]}) { nodes { slug entryCount parent { slug } ancestors { slug } entries(first: 2) { totalCount } } } }',
        None,
    ),
    (
        "{ sources(filter: {kind: [SOCIAL]}) { nodes { slug kind entries(first: 1, orderBy: UPDATED_AT_ASC) { nodes { headline } } } } blogs(filter: {status: [CLOSED]}) { totalCount nodes { slug status } } }",
        None,
    ),
    (
        "{ locations(filter: {near: {latitude: 44.6, longitude: 33.5, radiusKm: 200}, bbox: {minLon: 30, minLat: 40, maxLon: 40, maxLat: 50}}) { nodes { slug } } }",
        None,
    ),
    (
        '{ actor(slug: "peskov") { name aliases entries(first: 3) { nodes { headline } } } source(id: "1") { slug } blog(slug: "day-two") { title entryCount } }',
        None,
    ),
    (
        '{ node(id: "QWN0b3I6MQ==") { __typename id ... on Actor { slug } ... on Entry { headline } } nodes(ids: ["RW50cnk6Mw==", "QmxvZzoy", "QWN0b3I6OTk5"]) { id ... on Blog { slug } } }',
        None,
    ),
    ("query($id: ID!) { entry(id: $id) { headline media { kind embed { author handle } } } }", {"id": "RW50cnk6MQ=="}),
    (
        '{ timeline(interval: HOUR, filter: {location: ["crimea"]}) { __typename start count } days: timeline { count } }',
        None,
    ),
    # errors: both paths must agree (the fast one defers to the plain one)
    ('{ actor(slug: "nobody") { name } }', None),
    ('{ node(id: "garbage") { id } }', None),
    ('{ actor(id: "QmxvZzox") { name } }', None),
    ('{ entries(filter: {actor: ["nobody"]}) { nodes { headline } } }', None),
    ('{ entries(after: "forged") { nodes { headline } } }', None),
    ("{ entries(filter: {bbox: {minLon: 0, minLat: 50, maxLon: 10, maxLat: 40}}) { nodes { headline } } }", None),
]

# what REST's entry carries, every field of it: the compiled path (schema/compiled.py) answers
COMPILED_NODE = """
  id databaseId __typename headline body kind publishedAt updatedAt createdAt
  blog { __typename id databaseId slug title }
  actors { __typename role actor { __typename id databaseId slug name kind country } }
  locations { __typename id databaseId slug name kind latitude longitude country }
  sources { __typename id databaseId slug name kind }
  media { __typename position kind url caption credit altText embed { __typename author handle date text url } }
"""

COMPILED: list[tuple[str, dict[str, Any] | None]] = [
    ("{ entries { totalCount nodes { " + COMPILED_NODE + " } } }", None),
    ("{ entries(first: 100, orderBy: UPDATED_AT_DESC) { nodes { " + COMPILED_NODE + " } } }", None),
    (  # aliases, edges beside nodes with another selection, pageInfo, two roots, __typename at each level
        "{ __typename latest: entries(first: 3) { __typename total: totalCount edges { __typename cursor node { databaseId } }"
        " items: nodes { headline } pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor } }"
        " oldest: entries(first: 2, orderBy: PUBLISHED_AT_ASC) { nodes { title: headline } } }",
        None,
    ),
    (  # fragments (named, inline, on the Node interface), variables, @include and @skip by variable
        "query Q($n: Int, $f: EntryFilter, $withBlog: Boolean!, $noKind: Boolean!) {"
        " entries(first: $n, filter: $f) { nodes { ...E blog @include(if: $withBlog) { slug }"
        " kind @skip(if: $noKind) actors { ...A } } } }"
        " fragment E on Entry { headline alias: databaseId ... on Node { id } ... { publishedAt } }"
        " fragment A on EntryActor { role actor { ... on Actor { slug } } }",
        {"n": 5, "f": {"kind": ["VIDEO"]}, "withBlog": False, "noKind": True},
    ),
    (
        "query Q($n: Int, $f: EntryFilter, $withBlog: Boolean!, $noKind: Boolean!) {"
        " entries(first: $n, filter: $f) { nodes { ...E blog @include(if: $withBlog) { slug }"
        " kind @skip(if: $noKind) actors { ...A } } } }"
        " fragment E on Entry { headline alias: databaseId ... on Node { id } ... { publishedAt } }"
        " fragment A on EntryActor { role actor { ... on Actor { slug } } }",
        {"n": 7, "f": {"actor": ["peskov"]}, "withBlog": True, "noKind": False},
    ),
    (
        "query($f: EntryFilter) { entries(filter: $f, first: 10) { totalCount nodes { headline } } }",
        {"f": {"or": [{"actor": ["peskov"]}, {"location": ["crimea"]}], "not": {"kind": ["VIDEO"]}}},
    ),
    (
        "query($a: [String!], $since: DateTime, $until: DateTime) { entries(first: 50, filter: {actor: $a,"
        " publishedAfter: $since, publishedBefore: $until}) { totalCount nodes { databaseId publishedAt"
        " actors { role actor { databaseId slug name kind } } locations { databaseId slug name kind latitude longitude }"
        " sources { databaseId slug name kind } } } }",
        {"a": ["zelensky"], "since": "2023-09-13T12:00:00Z", "until": "2023-09-14T00:00:00Z"},
    ),
    (
        '{ entries(filter: {blog: ["day-two"], location: ["ukraine"]}, first: 4) { totalCount nodes { headline locations { slug } } } }',
        None,
    ),
    (
        '{ entries(filter: {search: "drone", publishedAfter: "2023-09-13T10:00:00Z"}, last: 3) { nodes { headline publishedAt } pageInfo { hasNextPage hasPreviousPage } } }',
        None,
    ),
    (
        '{ entries(filter: {search: "no such words"}) { totalCount nodes { headline } pageInfo { startCursor endCursor hasNextPage } } }',
        None,
    ),
    ("{ entries(first: 3) { nodes { headline @skip(if: true) kind databaseId } } }", None),
    ("{ entries(first: 3) { nodes { headline } nodes { kind } } }", None),
]
# errors where the compiled path would run: it defers, and the answer is the plain path's
COMPILED_ERRORS: list[tuple[str, dict[str, Any] | None]] = [
    ('{ entries(filter: {actor: ["nobody"]}) { nodes { headline } } }', None),
    ('{ entries(after: "forged") { nodes { headline } } }', None),
    ("{ entries(first: 1000) { nodes { headline } } }", None),
    ("{ entries(first: -1) { nodes { headline } } }", None),
    ("query($f: EntryFilter) { entries(filter: $f) { nodes { headline } } }", {"f": {"blog": ["nowhere"]}}),
    ("{ entries(filter: {bbox: {minLon: 0, minLat: 50, maxLon: 10, maxLat: 40}}) { nodes { headline } } }", None),
    ("{ entries { nodes { headline nope } } }", None),
    ("query($n: Int) { entries(first: $n) { nodes { headline } } }", {"n": "many"}),
]


async def test_fast_and_plain_answer_the_same(gql: Runner, world: World) -> None:
    """One world for the whole corpus (building it is most of the cost); each query named on failure."""
    for query, variables in CORPUS:
        fast = await gql.outcome(query, variables, compiled=False)
        plain = await gql.outcome(query, variables, fast=False)
        assert plain.path == "plain", query
        assert fast.json() == plain.json(), query
        if "errors" not in plain.body:
            assert fast.path == "fast", f"the corpus's data queries should all run on the fast path: {query}"


async def test_compiled_fast_and_plain_answer_the_same_bytes(gql: Runner, world: World) -> None:
    for query, variables in COMPILED + COMPILED_ERRORS:
        compiled = await gql.outcome(query, variables)
        fast = await gql.outcome(query, variables, compiled=False)
        plain = await gql.outcome(query, variables, fast=False)
        assert compiled.json() == fast.json() == plain.json(), (query, variables)
        if (query, variables) in COMPILED:
            assert "errors" not in plain.body, query
            assert compiled.path == "compiled", query
        else:
            assert "errors" in plain.body, query
            assert all("code" in e["extensions"] for e in compiled.body["errors"]), compiled.body


async def test_the_compiled_path_leaves_what_rest_does_not_carry_to_the_other_paths(gql: Runner, world: World) -> None:
    for query in (
        "{ entries(first: 2) { nodes { blog { entryCount } } } }",
        "{ entries(first: 2) { nodes { actors { actor { aliases } } } } }",
        "{ entries(first: 2) { nodes { locations { parent { slug } } } } }",
        "{ entries(first: 2) { nodes { actors { actor { entries(first: 1) { nodes { headline } } } } } } }",
        "{ entries(first: 2) { nodes { headline } } actors(first: 1) { nodes { slug } } }",
        "{ a: entries(first: 2) { nodes { headline } } a: entries(first: 2) { nodes { kind } } }",
    ):
        compiled = await gql.outcome(query)
        plain = await gql.outcome(query, fast=False)
        assert compiled.path in ("fast", "plain"), query
        assert compiled.json() == plain.json(), query


async def test_fast_and_plain_pages_agree(gql: Runner, world: World) -> None:
    query = """query($after: String, $before: String, $first: Int, $last: Int) {
      entries(first: $first, after: $after, last: $last, before: $before, filter: {actor: ["peskov"]}) {
        edges { cursor node { databaseId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    first = await gql.data(query, {"first": 7})
    middle = first["entries"]["pageInfo"]["endCursor"]
    for variables in (
        {"first": 7, "after": middle},
        {"last": 5, "before": middle},
        {"first": 3, "after": middle, "before": middle},
    ):
        compiled = await gql.outcome(query, variables)
        fast = await gql.outcome(query, variables, compiled=False)
        plain = await gql.outcome(query, variables, fast=False)
        assert (compiled.path, fast.path) == ("compiled", "fast")
        assert compiled.json() == fast.json() == plain.json(), variables
    backward = (await gql.data(query, {"last": 5, "before": middle}))["entries"]
    assert [e["node"]["databaseId"] for e in backward["edges"]] == [
        e["node"]["databaseId"] for e in first["entries"]["edges"][1:6]
    ]


async def test_fast_path_falls_back_for_what_it_does_not_know(gql: Runner, world: World) -> None:
    outcome = await gql.outcome("{ __schema { queryType { name } } }")
    assert outcome.path == "plain"
    assert outcome.body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
