"""The app in-process over the test's database, for tests that need no real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings


@pytest.fixture
def api_settings() -> Settings:
    # a fixed secret (cursors are signed with it) and a rate no test reaches
    return Settings(secret="api-test-secret", anonymous_rate=100_000)


@pytest.fixture
async def client(db_dsn: str, api_settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    async with AsyncTestClient(create_app(api_settings, db_dsn)) as client:
        yield client
