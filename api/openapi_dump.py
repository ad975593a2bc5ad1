"""Write the app's OpenAPI document to openapi/openapi.json: `python -m api.openapi_dump [--check]`.

Run it after changing any route, parameter or model; tests/api/test_openapi.py fails while
the committed file differs from what the app generates. `--check` only compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

from api.app import create_app
from api.docs import openapi_document
from api.settings import Settings

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
# never connected to: building the document runs no lifespan
_UNUSED_DSN = "postgresql://unused@127.0.0.1:1/unused"


def generate() -> bytes:
    """The document from an app with default settings, so the environment cannot change it."""
    return openapi_document(create_app(Settings(), _UNUSED_DSN))


def main(argv: list[str]) -> int:
    document = generate()
    if "--check" in argv:
        if COMMITTED.exists() and COMMITTED.read_bytes() == document:
            return 0
        print(f"{COMMITTED} is stale: run `python -m api.openapi_dump`", file=sys.stderr)
        return 1
    COMMITTED.parent.mkdir(parents=True, exist_ok=True)
    COMMITTED.write_bytes(document)
    print(f"wrote {COMMITTED} ({len(document)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
