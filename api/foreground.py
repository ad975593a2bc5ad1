"""Pages first: whole-result exports give way to the short requests an instance is serving.

An export reads and encodes rows for as long as its client reads, and on a machine of a few
cores that CPU comes out of every page request's latency. So the instance counts its HTTP
requests in flight (MetricsMiddleware) and, among them, the long-lived streams (exports and
Server-Sent Events, which count themselves); the rest are the foreground. Between two chunks an
export waits while any foreground request is in flight, for at most `most` seconds, so that it
runs in the gaps between pages and never stops for good: under a load that leaves no gap it
still sends a chunk every `most` seconds.
"""

from __future__ import annotations

import asyncio
import time

POLL = 0.002  # seconds between looks while pages are in flight


class Foreground:
    def __init__(self) -> None:
        self.requests = 0  # HTTP requests in flight, streams included
        self.streams = 0  # of which long-lived streams: exports, Server-Sent Events

    @property
    def busy(self) -> int:
        return self.requests - self.streams

    async def give_way(self, most: float) -> float:
        """Wait until no foreground request is in flight, or `most` seconds; the seconds waited."""
        if most <= 0 or self.busy <= 0:
            return 0.0
        started = time.monotonic()
        deadline = started + most
        while self.busy > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(POLL, left))
        return time.monotonic() - started
