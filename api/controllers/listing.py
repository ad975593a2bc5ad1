"""What every list answers: `{"data": [...], "page": {...}}` and a `Link: <…>; rel="next"` header."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request
from litestar.response import Response

from db.page import Cursors, Paged


class PageInfo(msgspec.Struct, omit_defaults=True):
    limit: int
    next_cursor: str | None
    total: int | None = None  # only with count=true


def cursors(request: Request[Any, Any, Any]) -> Cursors:
    state = request.app.state
    found: Cursors | None = state.get("rest_cursors")
    if found is None:
        found = state.rest_cursors = Cursors(state.settings.secret)
    return found


def page_info(
    request: Request[Any, Any, Any], found: Paged[Any], limit: int, *, sort: str, filter: msgspec.Struct | None
) -> PageInfo:
    key = found.next_key
    token = cursors(request).encode(key, sort=sort, filter=filter) if key is not None else None
    return PageInfo(limit=limit, next_cursor=token, total=found.total)


def next_link(request: Request[Any, Any, Any], info: PageInfo) -> str | None:
    """The `Link` header's value for the next page: this URL with the next cursor, if there is one."""
    if info.next_cursor is None:
        return None
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", info.next_cursor))
    url = request.url.with_replacements(query=urlencode(params))
    return f'<{url}>; rel="next"'


def list_response(request: Request[Any, Any, Any], body: Any, info: PageInfo) -> Response[Any]:
    link = next_link(request, info)
    return Response(body, headers={"Link": link} if link is not None else {})
