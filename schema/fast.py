"""Placeholder: replaced below."""

from __future__ import annotations

from typing import Any


async def execute(*args: Any) -> dict[str, Any] | None:
    return None
