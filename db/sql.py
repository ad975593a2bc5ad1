"""Named queries from `queries/*.sql`.

A file holds blocks that start with `-- name: some_name` followed by a one-line comment
saying what the query does. The SQL is trusted: it ships with the package and is never
built from user input; parameters are always passed as `$n`.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

QUERIES_DIR = Path(__file__).parent / "queries"
_HEADER = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    parts = _HEADER.split(text)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise RuntimeError(f"query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


@cache
def all_queries() -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(QUERIES_DIR.glob("*.sql")):
        for name, body in parse(path.read_text(encoding="utf-8")).items():
            if name in queries:
                raise RuntimeError(f"query {name!r} is defined in two files")
            queries[name] = body
    return queries


def query(name: str) -> str:
    return all_queries()[name]
