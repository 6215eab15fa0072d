"""Keys never leave: not in results, errors, resources, logs, the registry, the manifest or temp files.

The end-to-end test runs a real server process (streamable HTTP, bearer token, DEBUG
logging, a private TMPDIR) with distinctive fake keys for every vendor, pointed at a
loopback vendor that is as careless as a vendor can be: every answer is an error
(401, 403, 429, 500, 400, 503 in turn) whose body echoes every request header, the
query and the path, i.e. the key itself. First every chain is paid-only, so every
provider fails and every job fails; then the default chains run, the local tiers win
and every failed attempt is on the record. Afterwards every byte the client received,
the server's log and every file under YTAP_HOME and TMPDIR (database, WAL, manifest,
media, temporary files) is searched for each key: raw, URL-encoded, base64 and a
distinctive 16-character core, so a partial or re-encoded leak is caught too.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from core.config import Settings, scrub_secrets
from core.errors import Unavailable
from core.providers.base import scrub
from core.providers.resilience import RetryPolicy
from core.providers.testing import ScriptedProvider
from core.runtime import Runtime
from tests.reliability.procs import http_client, running_server
from tests.security.acceptance import record
from tests.vendors.loopback import LoopbackServer, Request, json_reply, loopback_server
from ytap_mcp.server import build_server

KEYS = {
    "OPENAI_API_KEY": "FAKE-openai-LEAKCANARY-7c41d9e2b8a05f36",
    "ELEVENLABS_API_KEY": "LEAKCANARYelevenlabs51c0ffee2a7d9b3e",
    "GOOGLE_API_KEY": "FAKE-google-LEAKCANARY-0a1b2c3d4e5f6a7b8",
    "YTAP_HTTP_TOKEN": "LEAKCANARYhttp-token-9f8e7d6c5b4a3921",
}
PAID_ONLY = {
    "YTAP_VIDEO_PROVIDERS": "google:veo-3.1,openai:sora-2",
    "YTAP_SPEECH_PROVIDERS": "openai:gpt-4o-mini-tts,openai:tts-1-hd,elevenlabs:eleven_multilingual_v2,"
                             "google:gemini-3.8-flash-tts",
    "YTAP_IMAGE_PROVIDERS": "openai:gpt-image-2,google:gemini-3.1-flash-image",
}
STATUSES = (401, 429, 403, 400, 429, 503, 401, 403)  # one 5xx a round: each costs a backoff


def _forms(key: str) -> dict[str, str]:
    """The shapes a key travels in: raw, URL-encoded, base64 (basic auth), and its distinctive core."""
    core = key[key.index("LEAKCANARY"):][:16]
    return {"raw": key, "url": quote(key, safe=""), "b64": base64.b64encode(key.encode()).decode()[:20], "core": core}


def _reflecting_vendor(server: LoopbackServer) -> None:
    turn = itertools.count()

    def reflect(req: Request) -> Any:
        status = STATUSES[next(turn) % len(STATUSES)]
        echo = json.dumps({"headers": req.headers, "query": req.query, "path": req.path,
                           "body": req.body[:300].decode("latin-1")})
        message = f"request rejected; you sent {echo}"
        # One body that reads as an error to every SDK: OpenAI and Google ("error"), ElevenLabs ("detail").
        body = {"error": {"message": message, "code": status, "status": "UNAUTHENTICATED", "type": "invalid_request"},
                "detail": {"message": message, "status": "invalid_api_key"}}
        return json_reply(body, status=status, headers={"retry-after": "0"} if status == 429 else None)

    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        server.route(method, r".*", sticky=reflect)


async def _session_calls(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Each call's complete answer (content, structured content, error flag) as the client got it."""
    seen: list[str] = []
    headers = {"authorization": f"Bearer {KEYS['YTAP_HTTP_TOKEN']}"}
    async with http_client(headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for tool, args in calls:
                    result = await session.call_tool(tool, {"video_id": "leaky", **args})
                    seen.append(result.model_dump_json())
                    env = result.structured_content or {}
                    while env.get("status") in ("queued", "running"):
                        result = await session.call_tool("job_status", {"job_id": env["job_id"], "wait_seconds": 30})
                        seen.append(result.model_dump_json())
                        env = result.structured_content or {}
                    if env.get("job_id"):
                        resource = await session.read_resource(f"ytap://jobs/{env['job_id']}")
                        seen.append(resource.model_dump_json())
                for uri in ("ytap://default/leaky/manifest",):
                    seen.append((await session.read_resource(uri)).model_dump_json())
                seen.append((await session.list_resources()).model_dump_json())
    return seen


JOB_CALLS = [
    ("generate_scene", {"scene_index": 1, "prompt": "a lighthouse", "duration_s": 1, "wait_seconds": 45}),
    ("synthesize_narration", {"segments": ["First line.", "Second line."], "wait_seconds": 45}),
    ("make_thumbnail", {"title": "Leaky", "wait_seconds": 45}),
    ("provider_report", {}),
]


def _search(texts: dict[str, str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for name, key in KEYS.items():
        for form_name, form in _forms(key).items():
            hits = [where for where, text in texts.items() if form in text]
            if hits:
                found[f"{name}/{form_name}"] = len(hits)
    return found


def _files(root: Path) -> dict[str, str]:
    return {str(p): p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file()}


def test_secrets_every_provider_failing_leaks_no_key_anywhere(tmp_path: Path) -> None:
    home, tmpdir, log = tmp_path / "home", tmp_path / "tmp", tmp_path / "server.log"
    tmpdir.mkdir()
    outputs: list[str] = []
    with loopback_server() as vendor:
        _reflecting_vendor(vendor)
        env = {**KEYS, "YTAP_LOG_LEVEL": "DEBUG", "TMPDIR": str(tmpdir),
               "OPENAI_BASE_URL": vendor.url + "/v1", "ELEVENLABS_BASE_URL": vendor.url,
               "GOOGLE_GEMINI_BASE_URL": vendor.url, "GOOGLE_VERTEX_BASE_URL": vendor.url}
        # 1. Paid-only chains: every provider fails, every job fails with every attempt's reason.
        with running_server(home, log, env={**env, **PAID_ONLY}) as server:
            outputs += anyio.run(_session_calls, server.url, JOB_CALLS)
        assert sum('"isError":true' in o or '"is_error":true' in o for o in outputs) >= 3, outputs[:3]
        # 2. Default chains: the local tiers win, the failed paid attempts are on the record.
        with running_server(home, log, env=env) as server:
            outputs += anyio.run(_session_calls, server.url, JOB_CALLS)
        vendor_calls = len(vendor.requests)
        sent = {h for r in vendor.requests for h in (r.headers.get("authorization"), r.headers.get("xi-api-key"),
                                                      r.headers.get("x-goog-api-key")) if h}
    # The keys really went out (so they really could have come back), to all three vendors.
    assert any(KEYS["OPENAI_API_KEY"] in h for h in sent) and KEYS["ELEVENLABS_API_KEY"] in sent
    assert KEYS["GOOGLE_API_KEY"] in sent
    texts = {f"output {n}": o for n, o in enumerate(outputs)}
    texts["server log"] = log.read_text(errors="replace")
    texts.update(_files(home))
    texts.update(_files(tmpdir))
    joined = "".join(outputs)
    assert "request rejected; you sent" in joined  # the vendor's echoes reached the client (scrubbed)
    assert all(code in joined for code in ("not_configured", "rate_limited", "unavailable"))  # 401/403, 429, 5xx
    found = _search(texts)
    record("secrets test: vendor calls answered with an echo of the key", vendor_calls)
    record("secrets test: outputs, logs and files searched", len(texts))
    record("secrets found", sum(found.values()))
    assert found == {}


def test_secrets_scrubbed_from_tool_errors_and_job_resources(tmp_path: Path) -> None:
    """A provider whose error text carries the key in any form: what the client sees is clean."""
    keyed = Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), **KEYS})
    key = KEYS["OPENAI_API_KEY"]
    leaky = ScriptedProvider("test:leaky", "image", [Unavailable(
        f"upstream said: Authorization: Bearer {key}; url {quote(key, safe='')}; json {json.dumps(key)}")] * 3)
    rt = Runtime.create(keyed, extra_providers=[leaky])
    rt.catalog.retry = RetryPolicy(attempts=1)
    try:
        async def main() -> list[str]:
            async with Client(build_server(runtime=rt)) as client:
                r = await client.call_tool("make_thumbnail", {"video_id": "v", "title": "T",
                                                              "providers": ["test:leaky"], "wait_seconds": 20})
                assert r.is_error
                job = re.search(r"job_[0-9a-f]+", r.content[0].text).group(0)  # type: ignore[union-attr]
                resource = await client.read_resource(f"ytap://jobs/{job}")
                manifest = await client.read_resource("ytap://default/v/manifest")
                return [r.model_dump_json(), resource.model_dump_json(), manifest.model_dump_json()]

        seen = anyio.run(main)
    finally:
        rt.close()
    texts = {f"client {n}": s for n, s in enumerate(seen)} | _files(keyed.home)
    assert _search(texts) == {}


@settings(max_examples=60, deadline=None)
@given(
    secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=40),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    form=st.sampled_from(["raw", "url", "json", "bearer", "header", "query"]),
)
def test_secrets_scrub_removes_every_form_property(secret: str, before: str, after: str, form: str) -> None:
    shaped = {
        "raw": secret,
        "url": quote(secret, safe=""),
        "json": json.dumps(secret)[1:-1],
        "bearer": f"Bearer {secret}",
        "header": f'"x-goog-api-key": "{secret}"',
        "query": f"https://vendor.example/v1?key={quote(secret, safe='')}",
    }[form]
    clean = scrub_secrets(before + shaped + after, [secret])
    for variant in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1]):
        assert variant not in clean or variant in before + after


def test_secrets_chain_scrub_catches_credentials_it_was_not_told_about() -> None:
    """Google project credentials mint OAuth tokens Settings never holds: attempt reasons lose them by shape."""
    reflected = 'vendor echo: {"authorization": "Bearer ya29.a0AfH6SMBLEAKCANARYoauth"}'
    assert "LEAKCANARY" not in scrub_secrets(reflected, [])
    assert "LEAKCANARY" not in scrub(reflected, [])  # core.providers.base.scrub, what the chain records


def test_secrets_log_filter_scrubs_messages_arguments_and_tracebacks() -> None:
    """core.config.SecretFilter, for the server's log handler (see the report on cli._setup_logging)."""
    import io
    import logging

    from core.config import SecretFilter

    key = KEYS["OPENAI_API_KEY"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter([key]))
    log = logging.getLogger("tests.security.secret_filter")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("vendor said %s", f"bad key {key}")
        try:
            raise RuntimeError(f"unexpected SDK error, request had Authorization: Bearer {key}")
        except RuntimeError:
            log.exception("job crashed")
        log.info("oauth token %s", "Bearer ya29.a0AfH6SMBLEAKCANARYoauth")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "vendor said bad key ***" in text and "RuntimeError" in text and "Traceback" in text
    assert _search({"log": text}) == {} and "LEAKCANARYoauth" not in text
