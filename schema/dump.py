"""Write the committed SDL: `python -m schema.dump` (tests/schema/test_sdl.py fails on drift)."""

from __future__ import annotations

from pathlib import Path

from schema import sdl

PATH = Path(__file__).parent / "schema.graphql"

if __name__ == "__main__":
    PATH.write_text(sdl(), encoding="utf-8")
    print(f"wrote {PATH}")
