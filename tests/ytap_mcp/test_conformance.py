"""The official MCP conformance suite (npm @modelcontextprotocol/conformance, pinned in npm_tools) against the
server over streamable HTTP, once per protocol era: ``conformance server --url ... --requirements <revision>``
runs exactly the server scenarios that revision requires, at its wire (2025-11-25: ``initialize`` and
sessions; 2026-07-28: stateless, ``server/discover``), plus the extension and pending ones, reported unscored.

Most scenarios are written against the suite's own fixture server: they call tools, prompts and resources
named ``test_*`` / ``test://...`` that a real server does not have, or need a capability ytap does not
declare. Every scenario is classified below, and the classification is checked to cover every scenario
the pinned suite runs, so a new one cannot slip by unseen:

- GENERIC: must pass (every check SUCCESS, WARNING, INFO or SKIPPED, none FAILURE) — they exercise only
  the protocol and what any server has;
- CAPABILITY: the server does not declare the capability (logging, completions, resources.subscribe in
  the legacy era), so ``-32601 Method not found`` is the correct answer and the scenario fails;
- FIXTURE: needs the suite's fixture tools/prompts/resources. Some "pass" vacuously: tools-call-simple-text
  and tools-call-error only check that ``test_simple_text`` / ``test_error_handling`` return text / an
  error, which the "Unknown tool" error result does; they prove nothing and are not asserted.

On top of that, every scenario (fixture ones included) must pass its ``wire-schema-valid`` check: every
JSON-RPC message the server sent is valid against the spec's JSON schema for the negotiated version.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from .npm_tools import NpmTools, npm_tools, ytap_http_server

LEGACY, MODERN = "2025-11-25", "2026-07-28"

GENERIC: dict[str, set[str]] = {
    LEGACY: {"server-initialize", "server-session-lifecycle", "ping", "tools-list", "resources-list", "prompts-list",
             "server-sse-multiple-streams", "dns-rebinding-protection"},
    MODERN: {"server-stateless", "tools-list", "resources-list", "prompts-list", "server-sse-multiple-streams",
             "dns-rebinding-protection", "caching", "sep-2164-resource-not-found", "http-header-validation",
             "input-required-result-unsupported-methods"},
}
# Checks inside a generic scenario that call a fixture tool (here `test_missing_capability`).
FIXTURE_CHECKS = {"server-stateless": {"sep-2575-server-rejects-undeclared-capability",
                                       "sep-2575-missing-capability-http-400"}}
CAPABILITY = {"logging-set-level", "completion-complete", "resources-subscribe", "resources-unsubscribe"}
FIXTURE = {
    "tools-call-simple-text", "tools-call-image", "tools-call-audio", "tools-call-embedded-resource",
    "tools-call-mixed-content", "tools-call-with-logging", "tools-call-error", "tools-call-with-progress",
    "tools-call-sampling", "tools-call-elicitation", "elicitation-sep1034-defaults", "elicitation-sep1330-enums",
    "json-schema-2020-12", "server-sse-polling", "resources-read-text", "resources-read-binary",
    "resources-templates-read", "prompts-get-simple", "prompts-get-with-args", "prompts-get-embedded-resource",
    "prompts-get-with-image", "http-custom-header-server-validation",
    "input-required-result-basic-elicitation", "input-required-result-basic-sampling",
    "input-required-result-basic-list-roots", "input-required-result-request-state",
    "input-required-result-multiple-input-requests", "input-required-result-multi-round",
    "input-required-result-missing-input-response", "input-required-result-non-tool-request",
    "input-required-result-result-type", "input-required-result-tampered-state",
    "input-required-result-capability-check", "input-required-result-ignore-extra-params",
    "input-required-result-validate-input",
    # the io.modelcontextprotocol/tasks extension (reported, unscored): fixture tools slow_compute, failing_job...
    "tasks-lifecycle", "tasks-capability-negotiation", "tasks-wire-fields", "tasks-request-state-removal",
    "tasks-mrtr-input", "tasks-request-headers", "tasks-dispatch-and-envelope", "tasks-status-notifications",
    "tasks-required-task-error", "tasks-mrtr-composition",
}
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")

pytestmark = pytest.mark.slow  # the npm suite against a server process, twice (about 10 s)


def _seed(url: str) -> None:
    """One finished scene, so resources/list has a manifest and the caching scenario can exercise resources/read."""

    async def main() -> None:
        async with Client(url) as client:
            env = (await client.call_tool("generate_scene", {"video_id": "conformance", "scene_index": 1,
                                                              "prompt": "x", "duration_s": 1, "wait_seconds": 40})
                   ).structured_content
            assert env["status"] == "succeeded", env

    anyio.run(main)


def _run_suite(tools: NpmTools, base: Path, revision: str) -> dict[str, list[dict[str, Any]]]:
    out = base / f"results-{revision}"
    with ytap_http_server(base) as url:
        _seed(url)
        cmd = tools.conformance_cli("server", "--url", url, "--requirements", revision, "-o", str(out))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=base,
                              env=tools.env(base / "conformance-home"))
    summary = proc.stdout[proc.stdout.find("=== SUMMARY ==="):]
    print("$", " ".join(cmd[1:]), f"\n[exit {proc.returncode}]\n{summary}\n{proc.stderr[-2000:]}")
    assert proc.returncode in (0, 1) and "=== SUMMARY ===" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    results: dict[str, list[dict[str, Any]]] = {}
    for d in sorted(out.iterdir()):
        m = _RESULT_DIR.match(d.name)
        assert m, d.name
        results[m["scenario"]] = json.loads((d / "checks.json").read_text())
    return results


@pytest.fixture(scope="module")
def suites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[dict[str, Any]]]]:
    tools = npm_tools()
    return {rev: _run_suite(tools, tmp_path_factory.mktemp(f"conformance-{rev}"), rev) for rev in (LEGACY, MODERN)}


def _failures(checks: list[dict[str, Any]], allowed: set[str] = frozenset()) -> list[str]:
    return [f"{c['id']}: {c.get('errorMessage')}" for c in checks
            if c["status"] == "FAILURE" and c["id"] not in allowed]


def _table(results: dict[str, list[dict[str, Any]]], revision: str) -> str:
    rows = []
    for name, checks in results.items():
        kind = "generic" if name in GENERIC[revision] else "capability" if name in CAPABILITY else "fixture"
        bad = _failures(checks, FIXTURE_CHECKS.get(name, set()) if kind == "generic" else set())
        warn = [c["id"] for c in checks if c["status"] == "WARNING"]
        note = f"  (warnings: {', '.join(warn)})" if warn else ""
        rows.append(f"{'PASS' if not bad else 'FAIL'}  {kind:<10} {name}{note}")
    return "\n".join(rows)


@pytest.mark.parametrize("revision", [LEGACY, MODERN])
def test_conformance_generic_server_scenarios_pass(suites: dict, revision: str) -> None:
    results = suites[revision]
    print(f"conformance, requirements {revision}:\n{_table(results, revision)}")
    unclassified = set(results) - GENERIC[revision] - CAPABILITY - FIXTURE
    assert not unclassified, f"classify these scenarios of the pinned suite: {sorted(unclassified)}"
    assert GENERIC[revision] <= set(results), f"not run: {sorted(GENERIC[revision] - set(results))}"
    failing = {name: f for name in GENERIC[revision]
               if (f := _failures(results[name], FIXTURE_CHECKS.get(name, set())))}
    assert not failing, json.dumps(failing, indent=2)


@pytest.mark.parametrize("revision", [LEGACY, MODERN])
def test_conformance_every_message_is_schema_valid(suites: dict, revision: str) -> None:
    bad = {name: [c.get("errorMessage"), c.get("details")] for name, checks in suites[revision].items()
           for c in checks if c["id"] == "wire-schema-valid" and c["status"] != "SUCCESS"}
    assert not bad, json.dumps(bad, indent=2, default=str)


def test_conformance_unknown_resource_is_invalid_params(suites: dict) -> None:
    checks = {c["id"]: c for c in suites[MODERN]["sep-2164-resource-not-found"]}
    assert checks["sep-2164-error-code"]["status"] == "SUCCESS", checks["sep-2164-error-code"].get("errorMessage")
