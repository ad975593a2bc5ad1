"""The OpenAPI document at GET /openapi.json and a page rendering it at GET /docs.

The document is served as `openapi_document(app)`: the same bytes `python -m api.openapi_dump`
commits to openapi/openapi.json (keys sorted, indented), so the drift test can compare them
byte for byte. The docs page is Swagger UI served from the `swagger-ui-bundle-v2` wheel
under /docs/assets, so it works with no network (no CDN).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import msgspec
from litestar import Litestar, Request, get
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Contact, License, Server, Tag
from litestar.plugins import InitPlugin
from litestar.response import Response
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json"
DOCS_PATH = "/docs"
ASSETS = f"{DOCS_PATH}/assets"

DESCRIPTION = """\
A data API for live conflict-news coverage: live blogs, their timestamped entries, and the
actors, locations and sources each entry names.

**Keys.** Send `Authorization: Bearer <key>` or `X-API-Key: <key>`. Anonymous reads are
allowed at a low rate unless the server requires a key. Responses carry `RateLimit-Limit`,
`RateLimit-Remaining` and `RateLimit-Reset`.

**Pages.** Lists take `limit` (1 to 200, default 50) and an opaque `cursor`, answer
`{"data": [...], "page": {"limit", "next_cursor", "total"}}` (`total` only with `count=true`)
and a `Link: <…>; rel="next"` header. Cursors are keyset-based and tied to the filters and
sort that made them.

**Formats.** `Accept` or `format=`: `application/json` (default), `application/x-ndjson`
(`format=ndjson`: the whole result streamed, one object a line, no page limit), `text/csv`
(`format=csv`: one row an entry, linked slugs joined with `;`), `application/geo+json`
(`format=geojson`: one feature per entry and location).

**Caching.** Every `GET` answer carries a strong `ETag`; send it back in `If-None-Match` to
get `304 Not Modified`. Anonymous reads are `Cache-Control: public, max-age=15`; reads with
a key are `private, no-cache`.

**Errors.** Every error is `application/problem+json` (RFC 9457) with `type`, `title`,
`status`, `detail`, and for bad parameters `errors: [{"name", "reason"}]`.
"""

TAGS = [
    Tag(name="blogs", description="Live blogs: one day or one story of coverage"),
    Tag(name="entries", description="Timestamped posts in a blog, with their links"),
    Tag(name="actors", description="People, organisations, states and armed forces"),
    Tag(name="locations", description="Places, in a hierarchy, with coordinates"),
    Tag(name="sources", description="Where a report comes from"),
    Tag(name="ops", description="Liveness, readiness, metrics"),
]


class LocalSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI whose scripts, styles and icon come from this server, not a CDN."""

    def __init__(self) -> None:
        super().__init__(
            path="/",
            js_url=f"{ASSETS}/swagger-ui-bundle.js",
            css_url=f"{ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
        )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="sitrep",
        version=version("sitrep"),
        summary="Live conflict-news coverage as a data API",
        description=DESCRIPTION,
        contact=Contact(name="sitrep"),
        license=License(name="MIT", identifier="MIT"),
        servers=[Server(url="/", description="This server")],
        tags=TAGS,
        use_handler_docstrings=True,
        path=DOCS_PATH,
        render_plugins=[LocalSwaggerUI()],
    )


def openapi_document(app: Litestar) -> bytes:
    """The OpenAPI document as committed: sorted keys, two-space indent, a final newline."""
    cached: bytes | None = app.state.get("openapi_document")
    if cached is None:
        raw = msgspec.json.encode(app.openapi_schema.to_schema(), order="sorted")
        cached = msgspec.json.format(raw, indent=2) + b"\n"
        app.state["openapi_document"] = cached
    return cached


@get(
    "/openapi.json",
    include_in_schema=False,
    media_type=OPENAPI_MEDIA_TYPE,
    sync_to_thread=False,
)
def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    return Response(openapi_document(request.app), media_type=OPENAPI_MEDIA_TYPE)


class DocsPlugin(InitPlugin):
    """GET /openapi.json and the offline assets of the /docs page."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(openapi_json)
        app_config.route_handlers.append(
            create_static_files_router(
                path=ASSETS,
                directories=[swagger_ui_path],
                name="docs-assets",
                cache_control=CacheControlHeader(public=True, max_age=3600),
            )
        )
        return app_config
