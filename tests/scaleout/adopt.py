"""Run another module's tests again in the module that calls :func:`adopt` (with its own fixtures).

The store suites are written once; tests/scaleout/test_pg_*.py adopt them and add the
``postgres_registry`` fixture, so PostgreSQL is held to exactly the tests SQLite passes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


def adopt(module: ModuleType, into: dict[str, Any], *, skip: dict[str, str]) -> list[str]:
    """Copy ``module``'s tests and fixtures into the namespace ``into``, except those named in ``skip``
    ({test name: why it does not apply on PostgreSQL}); the names adopted."""
    from _pytest.fixtures import FixtureFunctionDefinition

    missing = set(skip) - set(vars(module))
    if missing:
        raise LookupError(f"{module.__name__} has no tests {sorted(missing)} (renamed? update the skip list)")
    adopted = []
    for name, value in vars(module).items():
        if name in skip:
            continue
        if (name.startswith("test_") and callable(value)) or isinstance(value, FixtureFunctionDefinition):
            into[name] = value
            adopted.append(name)
    return adopted
