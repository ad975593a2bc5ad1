"""The client: one httpx.Client, answers decoded into the server's models with msgspec.

Retries, bounded: a 429 or 503 is retried after its Retry-After (at most `retries` times, and
never when the server asks for a wait above `max_wait`: that error is raised at once); a lost
connection is retried with a short backoff for reads, and for writes too, since every write
carries an Idempotency-Key (one per call, the same on each attempt), so a retried write is
answered from the first one instead of being made twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, cast

import httpx
import msgspec

from db.ingest.store import ImportResult
from sitrep_client import models as m

T = TypeVar("T")
Value = str | int | float | bool | datetime | date
Param = Value | Sequence[Value] | None
Body = msgspec.Struct | Mapping[str, Any]

RETRY_STATUSES = (429, 503)
NDJSON = "application/x-ndjson"

__all__ = ["ApiError", "Client", "ImportResult"]


class ApiError(Exception):
    """An answer of 400 or more: its status and its problem details (RFC 9457)."""

    def __init__(self, method: str, url: str, status: int, problem: dict[str, Any]) -> None:
        self.method, self.url, self.status, self.problem = method, url, status, problem
        detail = problem.get("detail") or problem.get("title") or ""
        super().__init__(f"{method} {url} answered {status}: {detail}")

    @property
    def errors(self) -> list[dict[str, str]]:
        """The parameters or fields at fault: [{"name": ..., "reason": ...}]."""
        found: list[dict[str, str]] = self.problem.get("errors") or []
        return found


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value!r}: give times with a zone (the API reads RFC 3339)")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def query(params: Mapping[str, Param]) -> list[tuple[str, str]]:
    """Query parameters: None left out, a sequence repeated (`actor=a&actor=b`), times as RFC 3339."""
    out: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        values: Sequence[Value] = value if isinstance(value, list | tuple) else (cast(Value, value),)
        out += [(name, _text(v)) for v in values]
    return out


def retry_after(response: httpx.Response, default: float = 1.0) -> float:
    """Retry-After in seconds, given as seconds or as an HTTP date."""
    value = response.headers.get("retry-after")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return default


class Client:
    """The sitrep REST API. `key`: an API key (sent as `Authorization: Bearer`)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        max_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "sitrep-client"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
        self.retries = retries
        self.max_wait = max_wait
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ sending

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Param] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """The answer, after the bounded retries; a 4xx or 5xx raises ApiError."""
        request = self._http.build_request(
            method, path, params=tuple(query(params or {})), content=content, headers=dict(headers or {})
        )
        safe = method in ("GET", "HEAD") or "Idempotency-Key" in request.headers
        attempt = 0
        while True:
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError:
                if not safe or attempt >= self.retries:
                    raise
                wait = min(0.25 * 2**attempt, self.max_wait)
            else:
                if response.status_code < 400:
                    return response
                response.read()
                wait = retry_after(response)
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries or wait > self.max_wait:
                    raise _error(request, response)
                response.close()
            attempt += 1
            self._sleep(wait)

    def _get(self, path: str, model: type[T], params: Mapping[str, Param] | None = None) -> T:
        return msgspec.json.decode(self._send("GET", path, params=params).content, type=model)

    def _write(
        self, method: str, path: str, model: type[T] | None, body: Body | bytes | None, idempotency_key: str | None
    ) -> T | None:
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        content: bytes | None
        if body is None or isinstance(body, bytes):
            content = body
        else:
            content = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        response = self._send(method, path, content=content, headers=headers)
        return None if model is None else msgspec.json.decode(response.content, type=model)

    # ------------------------------------------------------------------------ lists

    def pages(self, path: str, model: type[T], **params: Param) -> Iterator[m.Page[T]]:
        """Every page of a list, following `next_cursor` with the same parameters."""
        cursor: str | None = None
        while True:
            page = self._get(path, m.Page[model], {**params, "cursor": cursor})  # type: ignore[valid-type]
            yield page
            cursor = page.page.next_cursor
            if cursor is None:
                return

    def _walk(self, path: str, model: type[T], params: dict[str, Param]) -> Iterator[T]:
        params.setdefault("limit", 200)
        for page in self.pages(path, model, **params):
            yield from page.data

    def entries(self, **filters: Param) -> Iterator[m.Entry]:
        """Every entry under the filters (`blog`, `actor`, `location`, `source`, `since`, `until`,
        `updated_since`, `q`, `kind`, `bbox`, `actor_match`, `sort`), page after page."""
        return self._walk("/v1/entries", m.Entry, filters)

    def blogs(self, **filters: Param) -> Iterator[m.Blog]:
        return self._walk("/v1/blogs", m.Blog, filters)

    def actors(self, **filters: Param) -> Iterator[m.Actor]:
        return self._walk("/v1/actors", m.Actor, filters)

    def locations(self, **filters: Param) -> Iterator[m.Location]:
        return self._walk("/v1/locations", m.Location, filters)

    def sources(self, **filters: Param) -> Iterator[m.Source]:
        return self._walk("/v1/sources", m.Source, filters)

    def export_entries(self, **filters: Param) -> Iterator[m.Entry]:
        """Every entry under the filters in one streamed NDJSON answer (no pages, no page limit)."""
        response = self._send("GET", "/v1/entries", params=filters, headers={"Accept": NDJSON}, stream=True)
        decoder = msgspec.json.Decoder(m.Entry)
        try:
            for line in response.iter_lines():
                if line:
                    yield decoder.decode(line)
        finally:
            response.close()

    def timeline(self, interval: str = "day", **filters: Param) -> list[m.TimelineBucket]:
        return self._get("/v1/timeline", m.Timeline, {"interval": interval, **filters}).data

    # ------------------------------------------------------------------------ single items

    def entry(self, entry_id: int) -> m.Entry:
        return self._get(f"/v1/entries/{entry_id}", m.Entry)

    def blog(self, ref: int | str) -> m.Blog:
        return self._get(f"/v1/blogs/{ref}", m.Blog)

    def actor(self, ref: int | str) -> m.Actor:
        return self._get(f"/v1/actors/{ref}", m.Actor)

    def location(self, ref: int | str) -> m.Location:
        return self._get(f"/v1/locations/{ref}", m.Location)

    def source(self, ref: int | str) -> m.Source:
        return self._get(f"/v1/sources/{ref}", m.Source)

    # ------------------------------------------------------------------------ the change feed

    def changes(
        self, after: int = 0, *, limit: int = 1000, follow: bool = False, poll_interval: float = 2.0
    ) -> Iterator[m.Change]:
        """Every change after `after`, in commit order. Keep the last `seq` you applied and start
        from it next time: nothing is missed, deletions included. `follow`: once caught up, keep
        asking every `poll_interval` seconds instead of stopping."""
        while True:
            page = self._get("/v1/changes", m.ChangeList, {"after": after, "limit": limit})
            yield from page.data
            after = page.page.next_after
            if not page.data:
                if not follow:
                    return
                self._sleep(poll_interval)

    # ------------------------------------------------------------------------ writes

    def create_blog(self, blog: m.BlogCreate | Mapping[str, Any], *, idempotency_key: str | None = None) -> m.Blog:
        return _some(self._write("POST", "/v1/blogs", m.Blog, blog, idempotency_key))

    def create_entry(self, entry: m.EntryCreate | Mapping[str, Any], *, idempotency_key: str | None = None) -> m.Entry:
        return _some(self._write("POST", "/v1/entries", m.Entry, entry, idempotency_key))

    def update_entry(
        self, entry_id: int, patch: m.EntryPatch | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.Entry:
        return _some(self._write("PATCH", f"/v1/entries/{entry_id}", m.Entry, patch, idempotency_key))

    def delete_entry(self, entry_id: int, *, idempotency_key: str | None = None) -> None:
        self._write("DELETE", f"/v1/entries/{entry_id}", None, None, idempotency_key)

    def create_actor(self, actor: m.ActorCreate | Mapping[str, Any], *, idempotency_key: str | None = None) -> m.Actor:
        return _some(self._write("POST", "/v1/actors", m.Actor, actor, idempotency_key))

    def update_actor(
        self, ref: int | str, patch: m.ActorPatch | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.Actor:
        return _some(self._write("PATCH", f"/v1/actors/{ref}", m.Actor, patch, idempotency_key))

    def create_location(
        self, location: m.LocationCreate | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.Location:
        return _some(self._write("POST", "/v1/locations", m.Location, location, idempotency_key))

    def update_location(
        self, ref: int | str, patch: m.LocationPatch | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.Location:
        return _some(self._write("PATCH", f"/v1/locations/{ref}", m.Location, patch, idempotency_key))

    def create_source(
        self, source: m.SourceCreate | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.Source:
        return _some(self._write("POST", "/v1/sources", m.Source, source, idempotency_key))

    def update_source(
        self, ref: int | str, patch: m.SourcePatch | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> m.Source:
        return _some(self._write("PATCH", f"/v1/sources/{ref}", m.Source, patch, idempotency_key))

    def import_page(self, text: str, *, idempotency_key: str | None = None) -> ImportResult:
        """Import a live-blog page given as text, as `sitrep import` does."""
        return _some(self._write("POST", "/v1/imports", ImportResult, text.encode(), idempotency_key))


def _some(value: T | None) -> T:
    assert value is not None
    return value


def _error(request: httpx.Request, response: httpx.Response) -> ApiError:
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"status": response.status_code, "detail": response.text[:300]}
    return ApiError(request.method, str(request.url), response.status_code, problem)
