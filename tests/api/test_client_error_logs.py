"""Client errors are not the server's errors: no traceback, no ERROR line, nothing that grows
with the input and no control characters from a URL in the log (issue #12, defect 8e)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from api.errors import clip
from tests.api.live import live_server

BIG = "a" * 60_000  # what a URL can carry through httpx


def test_clip_bounds_and_escapes() -> None:
    assert clip("a\x00b\nc\x1b[31m") == "a\\x00b\\nc\\x1b[31m"
    clipped = clip("x" * 100_000)
    assert len(clipped) < 300
    assert clipped.endswith("(+99800 characters)")


def test_hostile_requests_write_a_small_clean_log(db_dsn: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with (
        live_server(db_dsn, tmp_path, log) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        for url in (
            f"/v1/actors/{BIG}",
            f"/v1/entries?actor={BIG}",
            f"/v1/entries?q={BIG}",
            "/v1/actors/a%00b",
            "/v1/entries?blog=%00",
            f"/v1/nothing/{BIG}",
            f"/v1/changes?after={BIG}",
        ):
            assert 400 <= http.get(url).status_code < 500
        for query in (
            f'{{ actor(slug: "{BIG}") {{ id }} }}',
            '{ entry(id: "\\u0000x") { id } }',
            '{ entry(id: "7") { id } }',
        ):
            assert "errors" in http.post("/graphql", json={"query": query}).json()
    written = log.read_bytes()
    assert len(written) < 2000, written[:2000]
    assert b"Traceback" not in written
    assert b"\x00" not in written


@pytest.mark.parametrize("level", [logging.INFO])
def test_graphql_client_errors_are_info_lines(level: int, caplog: pytest.LogCaptureFixture) -> None:
    from graphql import GraphQLError

    from db.errors import NotFound
    from schema.errors import log_error

    with caplog.at_level(level):
        log_error(GraphQLError("there is no actor " + BIG, original_error=NotFound("there is no actor " + BIG)))
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert len(record.getMessage()) < 400
