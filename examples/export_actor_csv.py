"""Export every entry naming an actor in a date range to CSV, following the API's cursors.

    python examples/export_actor_csv.py dmitry-peskov --since 2023-09-01T00:00:00Z \\
        --until 2023-10-01T00:00:00Z --base-url http://127.0.0.1:8000 -o peskov.csv

It uses sitrep_client: pages of 200 entries, typed, each next page asked for with the previous
page's cursor until there is none; a 429 or 503 is retried after its Retry-After. The rows are the
columns the API's own `format=csv` answers have (api.formats.entries_csv). Set SITREP_KEY to send an
API key.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from api.formats import entries_csv
from sitrep_client import ApiError, Client, Entry


def export(api: Client, actor: str, since: str | None, until: str | None, out: TextIO, page_size: int = 200) -> int:
    """Write the CSV to `out`; return the number of entries written."""
    rows, first = 0, True
    for page in api.pages("/v1/entries", Entry, actor=actor, since=since, until=until, limit=page_size):
        out.write(entries_csv(page.data, header=first).decode())
        rows += len(page.data)
        first = False
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("actor", help="actor id or slug, e.g. dmitry-peskov")
    parser.add_argument("--since", help="RFC 3339, inclusive")
    parser.add_argument("--until", help="RFC 3339, exclusive")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    try:
        with Client(args.base_url, os.environ.get("SITREP_KEY")) as api:
            if args.output:
                with open(args.output, "w", encoding="utf-8", newline="") as out:
                    rows = export(api, args.actor, args.since, args.until, out)
            else:
                rows = export(api, args.actor, args.since, args.until, sys.stdout)
    except ApiError as error:
        raise SystemExit(str(error)) from None
    print(f"exported {rows} entries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
