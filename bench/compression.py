"""CPU cost of compressing one answer, in process: `python bench/compression.py [URL or FILE]`.

Fetches the page once (default: Q2, the latest 50 entries with links, from a running
`sitrep serve`) and times api/compression.py's compress() per coding at the levels it uses,
beside a few slower levels for comparison, and the cost of a hit in its compressed-body cache.
"""

from __future__ import annotations

import sys
import timeit
import urllib.request
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import brotli
from litestar.types import Receive, Scope, Send

from api.compression import CompressionMiddleware, compress

DEFAULT = "http://127.0.0.1:8000/v1/entries?limit=50"


def _body(source: str) -> bytes:
    if source.startswith("http"):
        with urllib.request.urlopen(source) as response:
            data: bytes = response.read()
            return data
    return Path(source).read_bytes()


async def _nothing(scope: Scope, receive: Receive, send: Send) -> None:
    return None


def _best(fn: Callable[[], object], number: int = 200) -> float:
    """Seconds per call, the best of five rounds (the least disturbed by other load)."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def main(source: str) -> None:
    body = _body(source)
    print(f"page: {len(body):,} bytes")
    runs: list[tuple[str, Callable[[], bytes]]] = [
        ("gzip (as served)", partial(compress, body, "gzip")),
        ("br (as served)", partial(compress, body, "br")),
        ("gzip level 4", partial(zlib.compress, body, 4)),
        ("gzip level 6", partial(zlib.compress, body, 6)),
        ("brotli quality 3", partial(brotli.compress, body, quality=3)),
        ("brotli quality 5", partial(brotli.compress, body, quality=5)),
    ]
    for name, packer in runs:
        print(f"{name}: {_best(packer) * 1e6:,.0f} µs, {len(packer()):,} bytes")
    middleware = CompressionMiddleware(_nothing)
    middleware._compressed(body, "br", b'"tag"')
    hit = _best(partial(middleware._compressed, body, "br", b'"tag"'), 10_000)
    print(f"cache hit: {hit * 1e6:.2f} µs")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT)
