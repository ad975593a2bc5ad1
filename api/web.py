"""The pages a browser opens: the live page at GET / and everything under /static.

They are plain HTML, CSS and JavaScript modules in api/static that use only the public API
(REST and GraphQL over WebSocket), with their libraries (Leaflet, a world outline, GraphiQL
and React) vendored under api/static/vendor by web/vendor.mjs, so they work with no network.
GraphiQL's page (static/graphiql.html) is what GET /graphql answers a browser (schema/app.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from litestar import MediaType, get
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader
from litestar.plugins import InitPlugin
from litestar.response import Response
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/static"
# the page itself is revalidated (its ETag answers 304); scripts and libraries are kept a while
_PAGE_CACHE = CacheControlHeader(no_cache=True)
_ASSET_CACHE = CacheControlHeader(public=True, max_age=3600)


@cache
def page(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


def graphiql_html() -> bytes:
    return page("graphiql.html")


@get("/", include_in_schema=False, cache_control=_PAGE_CACHE, sync_to_thread=False)
def live_page() -> Response[bytes]:
    return Response(page("index.html"), media_type=MediaType.HTML)


class WebPlugin(InitPlugin):
    """GET / (the live page) and GET /static/… (its scripts, GraphiQL's, and the vendored libraries)."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(live_page)
        app_config.route_handlers.append(
            create_static_files_router(
                path=STATIC_PATH, directories=[STATIC_DIR], name="static", cache_control=_ASSET_CACHE
            )
        )
        return app_config
