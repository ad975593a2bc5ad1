"""The ASGI entry point for servers: settings from the environment, DATABASE_URL required."""

from __future__ import annotations

from api.app import create_app
from api.settings import from_env

_settings = from_env()
if not _settings.database_url:
    raise RuntimeError("api.asgi needs DATABASE_URL; `sitrep serve` sets it")
app = create_app(_settings, _settings.database_url)
