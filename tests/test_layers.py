"""The house rule: ytap_mcp -> tools -> core, vendor SDKs only in core/providers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENDOR_SDKS = ("openai", "elevenlabs", "google.genai", "google", "replicate")


def _imports(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in (REPO / package).rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("core", {"tools", "ytap_mcp", "mcp"}), ("tools", {"ytap_mcp", "mcp"})],
)
def test_layers_lower_packages_never_import_upper_ones(package: str, forbidden: set[str]) -> None:
    bad = [(str(p.relative_to(REPO)), m) for p, m in _imports(package) if _top(m) in forbidden]
    assert bad == []


def test_layers_vendor_sdks_only_inside_core_providers() -> None:
    bad = []
    for package in ("core", "tools", "ytap_mcp"):
        for path, module in _imports(package):
            if _top(module) in {"openai", "elevenlabs", "replicate"} or module.startswith("google"):
                if path.parent != REPO / "core" / "providers":
                    bad.append((str(path.relative_to(REPO)), module))
    assert bad == []


def test_layers_only_ytap_mcp_imports_the_mcp_sdk() -> None:
    users = {str(p.relative_to(REPO).parts[0]) for pkg in ("core", "tools", "ytap_mcp") for p, m in _imports(pkg)
             if _top(m) == "mcp"}
    assert users <= {"ytap_mcp"}


def test_layers_generic_package_names_resolve_to_this_repo() -> None:
    import core
    import tools
    import ytap_mcp

    for module in (core, tools, ytap_mcp):
        assert Path(module.__file__).resolve().is_relative_to(REPO), module.__file__


def test_layers_no_print_in_core_or_tools() -> None:
    bad = []
    for package in ("core", "tools"):
        for path in (REPO / package).rglob("*.py"):
            tree = ast.parse(path.read_text("utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert bad == []


def test_layers_only_config_reads_the_environment() -> None:
    bad = []
    for package in ("core", "tools"):
        for path in (REPO / package).rglob("*.py"):
            if path.name == "config.py":
                continue
            text = path.read_text("utf-8")
            if "os.environ" in text or "os.getenv" in text:
                bad.append(str(path.relative_to(REPO)))
    assert bad == []


def test_layers_every_package_folder_is_listed_in_pyproject() -> None:
    """The packages are listed by hand (generic names): a new sub-package missing there is absent from a wheel."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for pkg in ("core", "tools", "ytap_mcp")
             for p in (REPO / pkg).rglob("*.py")}
    assert found == listed
