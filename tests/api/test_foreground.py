"""Exports give way to page requests in flight (api/foreground.py), for a bounded time."""

from __future__ import annotations

import asyncio

from api.foreground import Foreground


async def test_an_export_waits_while_pages_are_in_flight_and_goes_on_when_they_end() -> None:
    foreground = Foreground()
    foreground.requests = 2  # two pages being answered
    waiting = asyncio.create_task(foreground.give_way(30))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    foreground.requests = 0
    waited = await asyncio.wait_for(waiting, 1)
    assert 0.05 <= waited < 1


async def test_streams_are_not_pages_and_a_busy_instance_still_lets_exports_on() -> None:
    foreground = Foreground()
    foreground.requests = foreground.streams = 3  # three exports or SSE streams, no page
    assert await foreground.give_way(30) == 0.0
    foreground.requests = 4  # and one page that does not end: the export goes on after `most`
    waited = await asyncio.wait_for(foreground.give_way(0.1), 5)
    assert 0.1 <= waited < 1
