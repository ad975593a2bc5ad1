"""The OpenAPI document at GET /openapi.json and a page rendering it at GET /docs.

The document is served as `openapi_document(app)`: the same bytes `python -m api.openapi_dump`
commits to openapi/openapi.json (keys sorted, indented), so the drift test can compare them
byte for byte. The docs page is Swagger UI served from the `swagger-ui-bundle-v2` wheel
under /docs/assets, so it works with no network (no CDN).
"""

from __future__ import annotations

import copy
from http import HTTPStatus
from importlib.metadata import version
from typing import Any

import msgspec
from litestar import Litestar, Request, get
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Contact, License, SecurityScheme, Server, Tag
from litestar.plugins import InitPlugin
from litestar.response import Response
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from api.controllers.curation import DOCUMENTED_CURATION
from api.controllers.writes import DOCUMENTED_WRITES
from api.formats import FORMATS_BY_OPERATION, MEDIA_TYPES, Format

OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json"
PROBLEM_MEDIA_TYPE = "application/problem+json"
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
(`format=geojson`: one feature per entry and location). A CSV cell of text that a
spreadsheet would run as a formula (one starting with `=`, `+`, `-`, `@`, a tab or a carriage
return) is written with a leading `'`; numbers such as ids and coordinates are written as
they are.

**Caching.** Every `GET` answer carries a strong `ETag`; send it back in `If-None-Match` to
get `304 Not Modified`. Anonymous reads are `Cache-Control: public, max-age=15`; reads with
a key are `private, no-cache`. `HEAD` on any `GET` route answers the `GET`'s status and
headers (`ETag`, `Content-Length`, rate headers) without the body.

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

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, openapi_dict(request.app))


class RefinedJson(JsonRenderPlugin):
    """/docs/openapi.json: the same refined document as /openapi.json."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return openapi_document(request.app)


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
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", description="Authorization: Bearer <key>"),
                "apiKey": SecurityScheme(
                    type="apiKey", name="X-API-Key", security_scheme_in="header", description="X-API-Key: <key>"
                ),
            }
        ),
        # anonymous reads are allowed (at a low rate) unless the server requires a key
        security=[{}, {"bearer": []}, {"apiKey": []}],
        use_handler_docstrings=True,
        path=DOCS_PATH,
        render_plugins=[LocalSwaggerUI(), RefinedJson()],
    )


def openapi_dict(app: Litestar) -> dict[str, Any]:
    """Litestar's document with what it cannot know from signatures (see `refine`)."""
    cached: dict[str, Any] | None = app.state.get("openapi_dict")
    if cached is None:
        cached = app.state["openapi_dict"] = refine(copy.deepcopy(app.openapi_schema.to_schema()))
    return cached


def openapi_document(app: Litestar) -> bytes:
    """The OpenAPI document as committed: sorted keys (JSON first in a content map, where client
    generators take the first media type as the typed answer), two-space indent, a final newline."""
    cached: bytes | None = app.state.get("openapi_document")
    if cached is None:
        raw = msgspec.json.encode(_ordered(openapi_dict(app)))
        cached = app.state["openapi_document"] = msgspec.json.format(raw, indent=2) + b"\n"
    return cached


# ---------------------------------------------------------------- refinements
#
# Handlers declare their parameters and success bodies; what every route shares is added
# here once: the problem responses (api/errors.py answers every failure as
# application/problem+json, where Litestar would document its own 400 body), 304 for
# conditional GETs (api/caching.py), and the `format` parameter with its media types on the
# lists that offer formats (api/formats.py).

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "The parameters or fields at fault, each with its reason",
            "items": {
                "type": "object",
                "required": ["name", "reason"],
                "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}
FEATURE_COLLECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 7946 FeatureCollection: one Point feature per entry and location it names",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "id", "geometry", "properties"],
                "properties": {
                    "type": {"const": "Feature"},
                    "id": {"type": "string"},
                    "geometry": {
                        "type": "object",
                        "required": ["type", "coordinates"],
                        "properties": {
                            "type": {"const": "Point"},
                            "coordinates": {
                                "type": "array",
                                "description": "[longitude, latitude]",
                                "items": {"type": "number"},
                                "minItems": 2,
                                "maxItems": 2,
                            },
                        },
                    },
                    "properties": {"type": "object"},
                },
            },
        },
        "page": {"type": "object", "description": "The page, as in the JSON answer"},
    },
}
IF_MATCH: dict[str, Any] = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "Write only if the resource still has this ETag (from a GET), or `*`: it exists;"
    " otherwise 412 and nothing is written.",
    "schema": {"type": "string"},
}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_WRITES = ("post", "put", "patch", "delete")


def _problem(status: int) -> dict[str, Any]:
    return {"description": HTTPStatus(status).phrase, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}


def _problem_statuses(path: str, method: str, offered: bool) -> list[int]:
    if path == "/ready":
        return [503]
    if not path.startswith("/v1/"):
        return []
    statuses = [400, 401, 404, 429, 503]
    if method in _WRITES or path.startswith("/v1/keys"):
        statuses.append(403)
    if method in ("post", "put", "patch"):
        statuses += [409, 413, 422]
    if method in ("patch", "delete") and not path.startswith("/v1/keys"):
        statuses.append(412)  # a stale If-Match (api/controllers/writes.py)
    if offered:
        statuses.append(406)
    return sorted(statuses)


def _is_litestar_default(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("description") == "Validation Exception")


def _list_item_schema(doc: dict[str, Any], ok: dict[str, Any]) -> dict[str, Any]:
    ref = ok.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    component = doc["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    items: dict[str, Any] = component.get("properties", {}).get("data", {}).get("items", {})
    return items


def _add_formats(doc: dict[str, Any], op: dict[str, Any], offered: tuple[Format, ...]) -> None:
    names = [f.value for f in offered]
    op.setdefault("parameters", []).append(
        {
            "name": "format",
            "in": "query",
            "required": False,
            "description": (
                "The response format; overrides the Accept header. ndjson streams the whole result."
                if len(offered) > 1
                else "The response format: json only (the default); any other value is a 400."
            ),
            "schema": {"type": "string", "enum": names},
        }
    )
    content = op["responses"]["200"].setdefault("content", {})
    for fmt in offered:
        if fmt is Format.NDJSON:
            content[MEDIA_TYPES[fmt]] = {"schema": _list_item_schema(doc, op["responses"]["200"])}
        elif fmt is Format.CSV:
            content[MEDIA_TYPES[fmt]] = {
                "schema": {"type": "string", "description": "A header row, then one row a record"}
            }
        elif fmt is Format.GEOJSON:
            content[MEDIA_TYPES[fmt]] = {"schema": FEATURE_COLLECTION_SCHEMA}


def _media_first(name: str) -> tuple[int, str]:
    return (0 if name == "application/json" else 1, name)


def _ordered(value: Any, key: str = "") -> Any:
    """Keys sorted at every level, except that a content map lists application/json first."""
    if isinstance(value, dict):
        names = sorted(value, key=_media_first) if key == "content" else sorted(value)
        return {name: _ordered(value[name], name) for name in names}
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


def _tidy(schema: Any) -> Any:
    """msgspec's JSON Schema as generators read it best: an enum of strings says it is a string,
    and an empty `required` is left out."""
    if isinstance(schema, dict):
        schema = {k: _tidy(v) for k, v in schema.items() if not (k == "required" and v == [])}
        if "enum" in schema and "type" not in schema and all(isinstance(v, str) for v in schema["enum"]):
            schema["type"] = "string"
        return schema
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    return schema


def _write_schemas(doc: dict[str, Any]) -> dict[str, tuple[dict[str, Any] | str | None, dict[str, Any]]]:
    """Each write's request and answer schemas (refs), their components added to the document.

    The write handlers read the raw body themselves (an Idempotency-Key is matched on its bytes),
    so Litestar cannot see their types; api.controllers.writes lists them instead."""
    documented = {**DOCUMENTED_WRITES, **DOCUMENTED_CURATION}
    types: list[Any] = []
    for body, answer in documented.values():
        types += [t for t in (body, answer) if t is not None and t is not str]
    refs, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    schemas = doc["components"]["schemas"]
    for name, schema in components.items():
        schemas.setdefault(name, _tidy(schema))  # the read routes' own components (Entry, ...) stay
    found = iter(refs)
    out: dict[str, tuple[dict[str, Any] | str | None, dict[str, Any]]] = {}
    for name, (body, _) in documented.items():
        request = TEXT_BODY if body is str else None if body is None else next(found)
        out[name] = (request, next(found))
    return out


TEXT_BODY = "text"


def _document_write(
    op: dict[str, Any], method: str, request: dict[str, Any] | str | None, answer: dict[str, Any]
) -> None:
    if request == TEXT_BODY:
        page = "A live-blog page as text (UTF-8), in the form `sitrep import` reads"
        op["requestBody"] = {
            "required": True,
            "content": {
                "text/plain": {"schema": {"type": "string", "description": page}},
                # the same bytes, as client generators that send no text/plain can
                "application/octet-stream": {"schema": {"type": "string", "format": "binary", "description": page}},
            },
        }
    elif isinstance(request, dict):
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": request}}}
    responses = op["responses"]
    if method == "post" and "201" in responses:
        created = responses.setdefault("201", {"description": "Created"})
        created["content"] = {"application/json": {"schema": answer}}
        created["headers"] = {
            "Location": {"description": "The URL of what was written", "schema": {"type": "string"}},
            "Idempotent-Replayed": {
                "description": "`true` when the answer is a replay of an earlier write with the same Idempotency-Key",
                "schema": {"type": "string"},
            },
        }
        responses.pop("200", None)
    else:
        responses["200"] = {"description": "The object as changed", "content": {"application/json": {"schema": answer}}}
    op.setdefault("parameters", []).append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Makes a retried write safe: the same key and body answer what the first attempt did",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
    )


def refine(doc: dict[str, Any]) -> dict[str, Any]:
    doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    writes = _write_schemas(doc)
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            if op.get("operationId") in writes:
                _document_write(op, method, *writes[op["operationId"]])
            for response in responses.values():  # a header object needs a schema (OpenAPI 3.1 §4.8.21)
                for header in response.get("headers", {}).values():
                    header.setdefault("schema", {"type": "string"})
            if "204" in responses:  # No Content: nothing to describe but the status
                responses["204"] = {"description": responses["204"].get("description") or "No Content"}
            offered = FORMATS_BY_OPERATION.get(op.get("operationId", ""))
            for status in _problem_statuses(path, method, offered is not None):
                existing = responses.get(str(status))
                if existing is None or _is_litestar_default(existing):
                    responses[str(status)] = _problem(status)
            if method in ("patch", "delete") and path.startswith("/v1/") and not path.startswith("/v1/keys"):
                op.setdefault("parameters", []).append(IF_MATCH)
            if method == "get" and path.startswith("/v1/") and "200" in responses:
                responses.setdefault("304", {"description": "Not Modified: the If-None-Match tag still matches"})
            if offered is not None and "200" in responses:
                _add_formats(doc, op, offered)
            if "204" in responses:  # No Content has no body (a Response[None] handler documents JSON null)
                responses["204"].pop("content", None)
    return doc


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
