"""The ``ytap-mcp`` command: serve (stdio by default), demo, doctor, archive.

On stdio, stdout is the MCP protocol: everything human-readable goes to stderr, except
the output of ``demo`` and ``doctor``, which are not servers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from core.config import SecretFilter, Settings

__all__ = ["main"]

_ENV_PREFIXES = ("YTAP_", "OPENAI_", "ELEVENLABS_", "GOOGLE_", "GEMINI_")


def _setup_logging(level: str, secrets: list[str] | None = None) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The vendor SDKs' HTTP clients log every request at INFO: noise, and URLs are nobody's business.
    for noisy in ("httpx", "httpx2", "httpcore", "google_genai", "openai", "elevenlabs"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # Tracebacks of unexpected vendor exceptions can quote a key; scrub every record on its way out.
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretFilter(secrets or []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ytap-mcp",
        description="MCP server that produces YouTube videos step by step. With no command: serve MCP on stdio.",
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve MCP (stdio, sse or streamable-http)")
    serve.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--allowed-host", action="append", default=[], metavar="HOST[:PORT]",
                       help="a Host header value clients use (required when binding beyond loopback; repeatable)")
    demo = sub.add_parser("demo", help="make a 3-scene video end to end through a real MCP client (no keys needed)")
    demo.add_argument("--video-id", default="ytap-demo")
    demo.add_argument("--home", type=Path, default=None, help="YTAP_HOME for the demo (default: the configured one)")
    sub.add_parser("doctor", help="what is configured and found: ffmpeg, espeak-ng, each provider")
    archive = sub.add_parser("archive", help="archive a finished video: keep the final video, thumbnail and manifest, "
                             "zip (or drop) the intermediates")
    archive.add_argument("video_id")
    archive.add_argument("--workspace", default="default")
    archive.add_argument("--keep", action="append", default=None,
                         choices=["final_video", "thumbnail", "narration", "scenes", "music"],
                         help="what stays in place besides manifest.json (repeatable; default: final_video, thumbnail)")
    archive.add_argument("--drop", action="store_true", help="delete the intermediates instead of zipping them")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    command = args.command or "serve"
    if command == "serve":
        _setup_logging(settings.log_level, settings.secrets())
        return _serve(settings, getattr(args, "transport", "stdio"), getattr(args, "host", "127.0.0.1"),
                      getattr(args, "port", 8000), getattr(args, "allowed_host", []))
    _setup_logging("WARNING")
    if command == "demo":
        import anyio

        from ytap_mcp.demo import run_demo

        home = args.home.resolve() if args.home else settings.home
        return anyio.run(run_demo, home, args.video_id)
    if command == "doctor":
        return _doctor(settings)
    if command == "archive":
        return _archive(settings, args.workspace, args.video_id, args.keep, args.drop)
    parser.error(f"unknown command {command}")
    return 2


def _serve(settings: Settings, transport: str, host: str, port: int, allowed_hosts: list[str]) -> int:
    from ytap_mcp.server import build_server

    if transport != "stdio":
        from ytap_mcp.http import HttpConfigError, security_settings

        token = settings.http_token.get() if settings.http_token else None
        hosts = [*settings.http_allowed_hosts, *allowed_hosts]
        try:
            security_settings(host, token, hosts)  # refuse an unprotected bind before building anything
        except HttpConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 2
    server = build_server(settings)
    try:
        if transport == "stdio":
            server.run("stdio")
        else:
            import anyio

            from ytap_mcp.http import serve_http

            print(f"ytap-mcp: {transport} on http://{host}:{port}{'/mcp' if transport == 'streamable-http' else '/sse'}"
                  f"{' (bearer token required)' if token else ''}", file=sys.stderr)
            anyio.run(lambda: serve_http(server, transport, host=host, port=port, token=token, allowed_hosts=hosts,
                                         log_level=settings.log_level))
    except KeyboardInterrupt:
        pass
    finally:
        server.runtime.close()
    return 0


def _archive(settings: Settings, workspace_id: str, video_id: str, keep: list[str] | None, drop: bool) -> int:
    """``ytap-mcp archive``: the archive_video tool from the command line; prints the result as JSON."""
    from core.errors import YtapError
    from core.runtime import Runtime
    from core.services.storage import DEFAULT_KEEP, archive_video

    rt = Runtime.create(settings)
    try:
        result = archive_video(rt, workspace_id, video_id, keep=tuple(keep or DEFAULT_KEEP),
                               intermediates="drop" if drop else "zip")
    except YtapError as exc:
        print(f"ytap-mcp archive: [{exc.code}] {exc.message}", file=sys.stderr)
        return 2
    finally:
        rt.close()
    print(result.model_dump_json(indent=2))
    return 0


def _doctor(settings: Settings) -> int:
    """Print what is found and configured; never a key's value."""
    from core.media.ffmpeg import locate_ffmpeg
    from core.providers.registry import ProviderCatalog

    ok = True
    print(f"ytap-mcp doctor\n  YTAP_HOME      {settings.home}")
    try:
        ff = locate_ffmpeg()
        print(f"  ffmpeg         {ff.path} (from {ff.source}, version {ff.version})")
    except Exception as exc:  # doctor reports, it does not crash
        ok = False
        print(f"  ffmpeg         NOT FOUND: {exc}")
    try:
        from core.media import espeak

        info = espeak.engine_info()
        print(f"  espeak-ng      {info.get('version', '?')} ({info.get('library', '?')})")
    except Exception as exc:
        ok = False
        print(f"  espeak-ng      NOT AVAILABLE: {exc}")
    for name, secret in (
        ("OPENAI_API_KEY", settings.openai_api_key),
        ("ELEVENLABS_API_KEY", settings.elevenlabs_api_key),
        ("GOOGLE_API_KEY/GEMINI_API_KEY", settings.google_api_key),
    ):
        print(f"  {name:<30} {'set' if secret else 'not set'}")
    if settings.budget_usd is not None:
        print(f"  YTAP_BUDGET_USD  {settings.budget_usd:.2f}")
    catalog = ProviderCatalog(settings)
    print("  providers (chain order first):")
    for capability in ("video", "speech", "image"):
        chain = catalog.chain_ids(capability)  # type: ignore[arg-type]
        others = [i for i in catalog.known_ids(capability) if i not in chain]  # type: ignore[arg-type]
        for pid in chain + others:
            reason = catalog.get(pid).unavailable_reason()
            where = "in chain" if pid in chain else "not in chain"
            state = "available" if reason is None else f"unavailable: {reason}"
            print(f"    {capability:<6} {pid:<36} {where:<13} {state}")
    return 0 if ok else 1


def passthrough_env() -> dict[str, str]:
    """The environment a server subprocess needs (the MCP SDK passes only a minimal one)."""
    return {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}

