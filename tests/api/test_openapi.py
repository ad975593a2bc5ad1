"""The committed OpenAPI document is what the app generates; /openapi.json and /docs serve it."""

from __future__ import annotations

import difflib
import re

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from api.openapi_dump import COMMITTED, generate
from db import keys as keydb


def test_committed_document_matches_the_app() -> None:
    generated = generate().decode()
    committed = COMMITTED.read_text(encoding="utf-8")
    if generated != committed:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    "openapi/openapi.json (committed)",
                    "generated",
                )
            )[:80]
        )
        pytest.fail(f"openapi/openapi.json is stale: run `python -m api.openapi_dump`\n{diff}")


async def test_served_document_is_the_committed_one(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    assert response.content == COMMITTED.read_bytes()
    document = msgspec.json.decode(response.content)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "sitrep"
    assert document["servers"] == [{"url": "/", "description": "This server"}]
    assert {"/health", "/ready", "/metrics"} <= set(document["paths"])


async def test_docs_page_renders_the_document_from_local_assets(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "SwaggerUIBundle" in page
    assert '"title":"sitrep"' in page  # the document is inlined into the page
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert len(assets) >= 4  # bundle, preset, stylesheet, icon
    for url in assets:
        assert url.startswith("/docs/assets/"), f"{url} would need the network"
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 500, url


def _operations() -> list[tuple[str, str, dict[str, object]]]:
    document = msgspec.json.decode(COMMITTED.read_bytes())
    methods = ("get", "post", "patch", "put", "delete")
    return [(path, m, op) for path, item in document["paths"].items() for m, op in item.items() if m in methods]


def _ref(content: object) -> str:
    assert isinstance(content, dict)
    schema = content["application/json"]["schema"]
    return str(schema.get("$ref", ""))


WRITES = {
    # operationId: (the request body's schema, the answer's schema)
    "createBlog": ("BlogCreate", "Blog"),
    "createEntry": ("EntryCreate", "Entry"),
    "updateEntry": ("EntryPatch", "Entry"),
    "createActor": ("ActorCreate", "Actor"),
    "updateActor": ("ActorPatch", "Actor"),
    "createLocation": ("LocationCreate", "Location"),
    "updateLocation": ("LocationPatch", "Location"),
    "createSource": ("SourceCreate", "Source"),
    "updateSource": ("SourcePatch", "Source"),
}


def test_every_write_documents_its_body_and_its_answer() -> None:
    document = msgspec.json.decode(COMMITTED.read_bytes())
    schemas = document["components"]["schemas"]
    seen = set()
    for path, method, op in _operations():
        name = str(op.get("operationId"))
        responses = op["responses"]
        assert isinstance(responses, dict)
        if name in WRITES:
            seen.add(name)
            body, answer = WRITES[name]
            request = op["requestBody"]
            assert isinstance(request, dict)
            assert request["required"] is True
            assert _ref(request["content"]) == f"#/components/schemas/{body}"
            assert schemas[body]["type"] == "object"
            ok = responses["201" if method == "post" else "200"]
            assert _ref(ok["content"]) == f"#/components/schemas/{answer}", (path, method)
            if method == "post":
                assert "Location" in ok["headers"], (path, method)
                assert "200" not in responses
        elif method == "delete":
            assert set(responses["204"]) == {"description"}, f"{path}: 204 has no content"
            assert "requestBody" not in op
        elif method == "patch" or name == "createKey":
            assert "requestBody" in op, (path, method)
    assert seen == set(WRITES)
    # required fields as the decoder has them; a patch requires nothing
    assert set(schemas["EntryCreate"]["required"]) == {"blog", "published_at", "headline"}
    assert "required" not in schemas["EntryPatch"]
    imports = document["paths"]["/v1/imports"]["post"]
    assert list(imports["requestBody"]["content"]) == ["application/octet-stream", "text/plain"]
    assert _ref(imports["responses"]["201"]["content"]) == "#/components/schemas/ImportResult"


def test_json_comes_first_in_every_content_map() -> None:
    for path, method, op in _operations():
        responses = op["responses"]
        assert isinstance(responses, dict)
        for status, response in responses.items():
            types = list(response.get("content", {}))
            if "application/json" in types:
                assert types[0] == "application/json", (path, method, status, types)
            # no answer documents a bare string where it sends an object
            if status.startswith("2") and types:
                schema = response["content"][types[0]]["schema"]
                assert schema != {"type": "string"} or types[0] != "application/json", (path, method, status)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/entries", "GET, HEAD, OPTIONS, POST"),
        ("/v1/entries/1", "DELETE, GET, HEAD, OPTIONS, PATCH"),
        ("/v1/actors/putin", "GET, HEAD, OPTIONS, PATCH"),
        ("/v1/blogs", "GET, HEAD, OPTIONS, POST"),
        ("/v1/imports", "OPTIONS, POST"),
        ("/v1/changes", "GET, HEAD, OPTIONS"),
        ("/v1/timeline", "GET, HEAD, OPTIONS"),
    ],
)
async def test_options_allows_every_method_of_the_path(
    client: AsyncTestClient,  # type: ignore[type-arg]
    path: str,
    allowed: str,
) -> None:
    response = await client.options(path)
    assert response.status_code == 204
    assert response.headers["allow"] == allowed


def test_every_201_documents_its_location() -> None:
    created = [(path, op) for path, method, op in _operations() if "201" in op["responses"]]  # type: ignore[operator]
    assert len(created) >= 7
    for path, op in created:
        responses = op["responses"]
        assert isinstance(responses, dict)
        assert "Location" in responses["201"]["headers"], path


async def test_a_created_key_is_where_its_location_says(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
) -> None:
    _, admin = await keydb.create_key(conn, "api-test-secret", name="admin", scopes=("admin",), rate=1000)
    headers = {"X-API-Key": admin}
    created = await client.post("/v1/keys", json={"name": "partner"}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/keys/{created.json()['id']}"
    found = await client.get(created.headers["location"], headers=headers)
    assert found.json()["name"] == "partner"
