"""Log lines for `sitrep serve`: text or one JSON object a line, the access log included.

The access log never shows a stream token: `token=` values in a logged path are replaced by
`…` (a token is a credential for a few minutes, and logs are kept longer).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import msgspec

_TOKEN = re.compile(r"([?&]token=)[^&]*")


def redact(path: str) -> str:
    return _TOKEN.sub(r"\1…", path)


def _access_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """uvicorn.access records carry (client, method, path, http version, status) as their args."""
    args = record.args
    if not isinstance(args, tuple) or len(args) != 5:
        return None
    client, method, path, version, status = args
    return {"client": client, "method": method, "path": redact(str(path)), "http": version, "status": status}


class TextAccessFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _access_fields(record)
        if fields is None:
            return super().format(record)
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return (
            f'{stamp} {fields["client"]} "{fields["method"]} {fields["path"]} HTTP/{fields["http"]}" {fields["status"]}'
        )


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (RFC 3339, UTC), level, logger, message, and for the access
    log client, method, path, http and status; an exception as `exc`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC),
            "level": record.levelname,
            "logger": record.name,
        }
        fields = _access_fields(record) if record.name == "uvicorn.access" else None
        if fields is not None:
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return msgspec.json.encode(line).decode()


def config(fmt: str, access_log: bool) -> dict[str, Any]:
    """A logging.config dict for the server (uvicorn applies it again in each worker)."""
    json = fmt == "json"
    formatters: dict[str, Any] = {
        "default": {"()": JsonFormatter} if json else {"format": "%(levelname)s %(name)s: %(message)s"},
        "plain": {"()": JsonFormatter} if json else {"format": "%(message)s"},
        "access": {"()": JsonFormatter if json else TextAccessFormatter},
    }
    stderr = "ext://sys.stderr"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": stderr},
            "plain": {"class": "logging.StreamHandler", "formatter": "plain", "stream": stderr},
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {
                "handlers": ["access"] if access_log else [],
                "level": "INFO",
                "propagate": False,
            },
            "sitrep.serve": {"handlers": ["plain"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
