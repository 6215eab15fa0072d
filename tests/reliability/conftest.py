from __future__ import annotations

from typing import Any

from tests.security.acceptance import summary_lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in summary_lines():
        terminalreporter.write_line(line)
