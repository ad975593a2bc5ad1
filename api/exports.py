"""Whole-result exports (NDJSON of every matching entry) run on resources of their own, so that
however many are asked for, page readers keep their connections and their latency.

An export holds a database connection and a snapshot for as long as its client reads. Each
instance therefore runs at most `slots` of them at once, each on a connection of a pool of that
size kept apart from the request pool, and each caller (a key, or an anonymous address) at most
`per_caller`. One more is refused at once rather than queued: 429 with Retry-After when the
caller already runs its share, 503 with Retry-After when the instance is full.

CPU is shared too: between two chunks an export gives way to the page requests in flight
(api/foreground.py), for at most `give_way` seconds a chunk.
"""

from __future__ import annotations

import weakref
from collections import Counter
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException

from api.auth import caller_of
from api.foreground import Foreground

RETRY_AFTER_SECONDS = "10"


class ExportRefused(HTTPException):
    """Rendered by api/errors.py as a problem with these headers."""


class ExportGate:
    def __init__(
        self, slots: int, per_caller: int, foreground: Foreground | None = None, give_way: float = 0.0
    ) -> None:
        self.slots = slots
        self.per_caller = per_caller
        self.running: Counter[str] = Counter()
        self.foreground = foreground or Foreground()
        self.give_way = give_way

    @property
    def in_use(self) -> int:
        return self.running.total()

    def take(self, caller: str) -> Ticket:
        """A slot for one export by `caller`, or ExportRefused. Taken before the response starts
        (a refusal is a problem document, not a broken stream); the export releases it when its
        stream ends, however it ends, and a stream that never started releases it when dropped."""
        if self.running[caller] >= self.per_caller:
            raise ExportRefused(
                status_code=429,
                detail=f"at most {self.per_caller} export(s) at once per caller; wait for yours to finish",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        if self.in_use >= self.slots:
            raise ExportRefused(
                status_code=503,
                detail=f"this instance is running its {self.slots} exports; retry shortly",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        self.running[caller] += 1
        self.foreground.streams += 1
        return Ticket(self, caller)

    def _release(self, caller: str) -> None:
        self.foreground.streams -= 1
        self.running[caller] -= 1
        if self.running[caller] <= 0:
            del self.running[caller]


class Ticket:
    def __init__(self, gate: ExportGate, caller: str) -> None:
        self._gate: ExportGate | None = gate
        self._caller = caller

    def release(self) -> None:
        """Idempotent: the stream's end and the stream's collection may both call it."""
        if self._gate is not None:
            self._gate._release(self._caller)
            self._gate = None

    async def give_way(self) -> None:
        """Between two chunks: let the page requests in flight go first (bounded)."""
        gate = self._gate
        if gate is not None:
            await gate.foreground.give_way(gate.give_way)

    def bind(self, stream: object) -> None:
        """Release when `stream` is collected, in case it is never iterated to its end."""
        weakref.finalize(stream, self.release)


def export_caller(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """Whose share an export counts against: the key, or the anonymous client's address."""
    caller = caller_of(connection)
    return f"key:{caller.key_id}" if caller.key_id is not None else f"address:{caller.client}"
