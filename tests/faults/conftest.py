"""Print the fault run's figures at the end of the pytest run (with or without -s)."""

from __future__ import annotations

import pytest

from tests.faults import report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if report.LINES:
        terminalreporter.section("fault suite figures")
        for line in report.LINES:
            terminalreporter.write_line(line)
