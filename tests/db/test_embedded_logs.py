"""The embedded server keeps its own logs out of the terminal, whatever the process logs at."""

from __future__ import annotations

import logging

import pytest

from db import embedded
from tests.conftest import embedded_data_dir


def test_the_embedded_servers_logs_go_to_files_in_the_data_dir(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    root = logging.getLogger()
    loud = logging.StreamHandler()  # as a verbose log configuration would have it
    root.addHandler(loud)
    caplog.set_level(logging.DEBUG)  # the root logger lets everything through to `loud`
    try:
        with embedded_data_dir() as data_dir:
            _, server = embedded.start(data_dir)
            embedded.stop(server)
            wheel_log = embedded.wheel_log_path(data_dir).read_text()
            server_log = embedded.log_path(data_dir).read_text()
    finally:
        root.removeHandler(loud)
    out, err = capfd.readouterr()
    assert "pg_ctl" not in out + err
    assert "initdb" not in out + err
    assert "pg_ctl" in wheel_log  # the wheel's own account of what it ran
    assert "database system is ready to accept connections" in server_log
