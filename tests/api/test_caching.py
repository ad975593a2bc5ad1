"""ETag on every GET, If-None-Match answered with 304, Cache-Control for CDNs and keyed callers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar, get
from litestar.response import Response, Stream
from litestar.testing import AsyncTestClient

from api.caching import HttpCachingMiddleware, etag_for, if_none_match_hits


async def test_anonymous_get_has_etag_and_public_short_cache(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/openapi.json", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["etag"] == etag_for(response.content)  # compressed answers: api/compression.py
    assert response.headers["cache-control"] == "public, max-age=15"
    assert "Accept" in response.headers["vary"]


@pytest.mark.parametrize(
    "condition",
    ["{etag}", "W/{etag}", '"nope", {etag}', '"a", "b,c" , W/{etag}', "*"],
    ids=["exact", "weak", "in-list", "list-with-comma-in-tag", "star"],
)
async def test_matching_if_none_match_answers_304_without_body(
    client: AsyncTestClient,  # type: ignore[type-arg]
    condition: str,
) -> None:
    first = await client.get("/openapi.json")
    etag = first.headers["etag"]
    again = await client.get("/openapi.json", headers={"If-None-Match": condition.format(etag=etag)})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "public, max-age=15"
    assert "content-type" not in again.headers


@pytest.mark.parametrize("condition", ['"stale"', 'W/"stale", "older"', ""])
async def test_other_tags_get_the_full_answer(client: AsyncTestClient, condition: str) -> None:  # type: ignore[type-arg]
    response = await client.get("/openapi.json", headers={"If-None-Match": condition})
    assert response.status_code == 200
    assert response.content.startswith(b"{")


async def test_different_bodies_have_different_tags(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    document = await client.get("/openapi.json")
    page = await client.get("/docs")
    assert document.headers["etag"] != page.headers["etag"]
    cross = await client.get("/docs", headers={"If-None-Match": document.headers["etag"]})
    assert cross.status_code == 200


async def test_errors_are_not_stored_and_have_no_etag(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/docs/no-such-page")
    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers


async def test_operational_answers_are_never_cached(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    for path in ("/health", "/ready", "/metrics"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path


# The keyed and streamed cases on a small app: which routes take keys or stream belongs to
# other modules, and the rule here is the middleware's alone.
@get("/thing", sync_to_thread=False)
def thing() -> dict[str, str]:
    return {"thing": "value"}


@get("/own-cache-control", sync_to_thread=False)
def own_cache_control() -> Response[dict[str, str]]:
    return Response({"a": "b"}, headers={"Cache-Control": "no-cache"})


@get("/stream", sync_to_thread=False)
def stream() -> Stream:
    return Stream(iter([b"one\n", b"two\n", b"three\n"]), media_type="application/x-ndjson")


@pytest.fixture
async def small() -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = Litestar([thing, own_cache_control, stream], middleware=[HttpCachingMiddleware()])
    async with AsyncTestClient(app) as client:
        yield client


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
async def test_a_keyed_read_is_private_and_revalidates(small: AsyncTestClient, header: str) -> None:  # type: ignore[type-arg]
    value = "Bearer k" if header == "Authorization" else "k"
    response = await small.get("/thing", headers={header: value})
    assert response.headers["cache-control"] == "private, no-cache"
    again = await small.get("/thing", headers={header: value, "If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["cache-control"] == "private, no-cache"


async def test_a_handler_keeps_its_own_cache_control(small: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await small.get("/own-cache-control")
    assert response.headers["cache-control"] == "no-cache"
    assert "etag" in response.headers


async def test_a_streamed_answer_passes_through_untagged(small: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await small.get("/stream")
    assert response.status_code == 200
    assert response.content == b"one\ntwo\nthree\n"
    assert "etag" not in response.headers
    assert response.headers["cache-control"] == "public, max-age=15"


async def test_writes_are_left_alone(small: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await small.post("/thing")
    assert response.status_code == 405
    assert "etag" not in response.headers
    assert "cache-control" not in response.headers


@pytest.mark.parametrize(
    ("header", "hits"),
    [('"x"', True), ('W/"x"', True), ('"y", "x"', True), ('"y"', False), ("*", True), ('"x,"', False)],
)
def test_if_none_match_parsing(header: str, hits: bool) -> None:
    assert if_none_match_hits(header, '"x"') is hits
