"""Export every entry naming an actor in a date range to CSV, following the API's cursors.

    python examples/export_actor_csv.py dmitry-peskov --since 2023-09-01T00:00:00Z \\
        --until 2023-10-01T00:00:00Z --base-url http://127.0.0.1:8000 -o peskov.csv

Each page is asked for as CSV (`format=csv`, 200 rows); the next page's address comes from
the `Link: <…>; rel="next"` header, until there is none. Only the first page's header row is
kept. A 429 is retried after its `Retry-After`. Set SITREP_KEY to send an API key.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from typing import TextIO

import httpx


def export(
    client: httpx.Client, actor: str, since: str | None, until: str | None, out: TextIO, page_size: int = 200
) -> int:
    """Write the CSV to `out`; return the number of entries written."""
    params = {"actor": actor, "format": "csv", "limit": str(page_size)}
    if since:
        params["since"] = since
    if until:
        params["until"] = until
    url: str | None = "/v1/entries"
    request_params: dict[str, str] | None = params
    rows, first = 0, True
    while url:
        response = get(client, url, request_params)
        text = response.text
        _header, _, records = text.partition("\n")  # the header row holds no line break
        out.write(text if first else records)  # every page repeats the header row
        rows += sum(1 for _ in csv.reader(io.StringIO(records, newline="")))
        first = False
        url = response.links.get("next", {}).get("url")
        request_params = None  # the next link carries every parameter, the cursor included
    return rows


def get(client: httpx.Client, url: str, params: dict[str, str] | None, retries: int = 5) -> httpx.Response:
    for _ in range(retries):
        response = client.get(url, params=params)
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code != 200:
            try:
                problem = response.json()
                detail = problem.get("detail") or problem.get("title")
            except ValueError:
                detail = response.text[:200]
            raise SystemExit(f"GET {response.url} answered {response.status_code}: {detail}")
        return response
    raise SystemExit(f"GET {url}: still rate limited after {retries} tries")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("actor", help="actor id or slug, e.g. dmitry-peskov")
    parser.add_argument("--since", help="RFC 3339, inclusive")
    parser.add_argument("--until", help="RFC 3339, exclusive")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    headers = {"Accept": "text/csv"}
    if key := os.environ.get("SITREP_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    with httpx.Client(base_url=args.base_url, headers=headers, timeout=30) as client:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                rows = export(client, args.actor, args.since, args.until, out)
        else:
            rows = export(client, args.actor, args.since, args.until, sys.stdout)
    print(f"exported {rows} entries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
