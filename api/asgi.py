"""The ASGI entry point for servers: settings from the environment, DATABASE_URL required."""

from __future__ import annotations

import gc

from api.app import create_app
from api.settings import from_env

_settings = from_env()
if not _settings.database_url:
    raise RuntimeError("api.asgi needs DATABASE_URL; `sitrep serve` sets it")
app = create_app(_settings, _settings.database_url)
# what is loaded by now (the modules, the app, its routes and schema) lives as long as the
# process: out of the collector's sight, full collections no longer walk it on every request
# burst, and forked workers keep sharing its pages
gc.collect()
gc.freeze()
