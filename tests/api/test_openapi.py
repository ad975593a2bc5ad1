"""The committed OpenAPI document is what the app generates; /openapi.json and /docs serve it."""

from __future__ import annotations

import difflib
import re

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from api.openapi_dump import COMMITTED, generate


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
