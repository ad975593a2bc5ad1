"""The plan cache (schema/plans.py): one parse per document, kept by the document's SHA-256."""

from __future__ import annotations

import hashlib

from schema import build, plans
from schema.plans import Plans, document_hash
from tests.schema.conftest import Runner, World

Q = "query($n: Int, $a: [String!]) { entries(first: $n, filter: {actor: $a}) { nodes { databaseId headline } } }"


def test_a_document_is_parsed_once_and_kept_by_its_sha256() -> None:
    cache = Plans()
    schema = build()._schema
    first = cache.get(schema, Q)
    assert cache.parses == 1
    assert first.sha == hashlib.sha256(Q.encode()).hexdigest() == document_hash(Q)  # APQ's sha256Hash
    assert document_hash(Q) in cache
    assert cache.get(schema, Q) is first
    assert cache.get(schema, Q, first.sha) is first  # as APQ gives it: the hash already known
    assert cache.parses == 1
    other = cache.get(schema, Q + " ")  # another text is another document
    assert other is not first
    assert cache.parses == 2


async def test_variables_change_the_answer_not_the_plan(gql: Runner, world: World) -> None:
    plans.PLANS.clear()
    parses = plans.PLANS.parses
    peskov = await gql.data(Q, {"n": 3, "a": ["peskov"]})
    nato = await gql.data(Q, {"n": 5, "a": ["nato"]})
    assert plans.PLANS.parses == parses + 1
    assert len(peskov["entries"]["nodes"]) == 3
    assert len(nato["entries"]["nodes"]) == 5
    assert peskov != nato
    # the same document by another transport or by its APQ hash is the same plan
    plan = plans.PLANS.get(build()._schema, Q, document_hash(Q))
    assert plans.PLANS.parses == parses + 1
    operation = plan.operation(None)
    assert not isinstance(operation, Exception)
    assert operation.directive_variables == ()


async def test_skip_and_include_by_variable_are_decided_per_request(gql: Runner, world: World) -> None:
    query = "query($h: Boolean!, $k: Boolean!) { entries(first: 2) { nodes { headline @include(if: $h) kind @skip(if: $k) } } }"
    with_headline = await gql.outcome(query, {"h": True, "k": True})
    with_kind = await gql.outcome(query, {"h": False, "k": False})
    assert with_headline.path == with_kind.path == "compiled"
    assert [set(n) for n in with_headline.body["data"]["entries"]["nodes"]] == [{"headline"}] * 2
    assert [set(n) for n in with_kind.body["data"]["entries"]["nodes"]] == [{"kind"}] * 2
    operation = plans.PLANS.get(build()._schema, query).operation(None)
    assert not isinstance(operation, Exception)
    assert operation.directive_variables == ("h", "k")


async def test_invalid_documents_are_never_kept(gql: Runner, world: World) -> None:
    plans.PLANS.clear()
    for bad in ("{ entries { nodes { nope } } }", "{ entries {", "query { entries { ...Missing } }"):
        for _ in range(2):
            body = await gql(bad)
            assert body["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"), body
        assert document_hash(bad) not in plans.PLANS
    assert len(plans.PLANS) == 0
    # an unknown operation name is an error of the request, not of the document: the plan stays
    body = await gql("query A { __typename } query B { __typename }", None)
    assert "errors" in body
    assert len(plans.PLANS) == 1


def test_the_cache_keeps_at_most_its_size_dropping_the_least_recently_used() -> None:
    cache = Plans(size=3)
    schema = build()._schema
    texts = [f"{{ entries(first: {n}) {{ nodes {{ headline }} }} }}" for n in range(1, 5)]
    for text in texts[:3]:
        cache.get(schema, text)
    cache.get(schema, texts[0])  # used again: now the most recent
    cache.get(schema, texts[3])
    assert len(cache) == 3
    assert document_hash(texts[1]) not in cache
    assert all(document_hash(t) in cache for t in (texts[0], texts[2], texts[3]))
    parses = cache.parses
    cache.get(schema, texts[1])
    assert cache.parses == parses + 1


def test_documents_over_the_size_bound_are_not_kept() -> None:
    cache = Plans()
    text = "{ entries { nodes { headline } } }" + " " * plans.MAX_QUERY
    cache.get(schema := build()._schema, text)
    cache.get(schema, text)
    assert len(cache) == 0
    assert cache.parses == 2
