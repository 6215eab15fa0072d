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
from typing import TYPE_CHECKING

from core.config import SecretFilter, Settings

if TYPE_CHECKING:
    from core.runtime import Runtime

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
    demo.add_argument("--providers", default="", metavar="ID[,ID...]",
                      help="a video provider per scene, in turn (e.g. motion:sd:default,local:placeholder): a mixed "
                           "video; default: each scene from the configured chain")
    worker = sub.add_parser("worker", help="run jobs as Temporal workflows and activities (YTAP_TEMPORAL_ADDRESS)")
    worker.add_argument("--max-jobs", type=int, default=16, help="jobs this worker runs at once (default 16)")
    sub.add_parser("doctor", help="what is configured and found: ffmpeg, espeak-ng, each provider")
    archive = sub.add_parser("archive", help="archive a finished video: keep the final video, thumbnail and manifest, "
                             "zip (or drop) the intermediates")
    archive.add_argument("video_id")
    archive.add_argument("--workspace", default="default")
    archive.add_argument("--keep", action="append", default=None,
                         choices=["final_video", "thumbnail", "narration", "scenes", "music"],
                         help="what stays in place besides manifest.json (repeatable; default: final_video, thumbnail)")
    archive.add_argument("--drop", action="store_true", help="delete the intermediates instead of zipping them")
    models = sub.add_parser("models", help="local model weights: fetch them ahead of time (YTAP_MODELS_DIR)")
    models.add_argument("action", choices=["fetch"])
    models.add_argument("model", choices=["kokoro"])
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    from core.media.ffmpeg import configure_ffmpeg

    configure_ffmpeg(settings.ffmpeg)
    command = args.command or "serve"
    if command == "serve":
        _setup_logging(settings.log_level, settings.secrets())
        return _serve(settings, getattr(args, "transport", "stdio"), getattr(args, "host", "127.0.0.1"),
                      getattr(args, "port", 8000), getattr(args, "allowed_host", []))
    if command == "worker":
        _setup_logging(settings.log_level, settings.secrets())
        return _worker(settings, args.max_jobs)
    _setup_logging("WARNING")
    if command == "demo":
        import anyio

        from ytap_mcp.demo import run_demo

        home = args.home.resolve() if args.home else settings.home
        per_scene = [p.strip() for p in args.providers.split(",") if p.strip()]
        return anyio.run(run_demo, home, args.video_id, per_scene)
    if command == "doctor":
        return _doctor(settings)

    if command == "models":
        return _models_fetch(settings)
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
    _stop_on_signals(server.runtime)
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
        _stop(server.runtime)
    return 0


# A signal's whole budget: jobs get most of it to stop their ffmpeg and remove their partial
# files (the stdin-closed path takes ~0.3 s); what is still running after it is killed.
_SIGNAL_JOBS_S = 1.2
_SIGNAL_DEADLINE_S = 1.8


def _stop(runtime: Runtime, jobs_timeout_s: float = 10.0,
          reason: str = "interrupted: the server stopped; start the job again") -> None:
    """What every way out does: cancel the jobs (recorded), then kill every child process group."""
    from core.media import children, native_worker

    try:
        runtime.jobs.shutdown(timeout_s=jobs_timeout_s, reason=reason)
    finally:
        native_worker.stop_all()
        children.kill_all()  # whatever a job did not stop in time (it logs what it killed)
        runtime.registry.close()


def _stop_on_signals(runtime: Runtime) -> None:
    """SIGTERM and SIGINT: the path closing stdin takes, bounded to 2 s, then exit 0 (1 if it overran).

    The handler only starts a thread: the main thread may hold a lock the shutdown needs
    (the registry's, a logging handler's) at the instant the signal lands. A watchdog
    kills the children and exits at the deadline whatever the shutdown is waiting for.
    """
    import signal
    import threading

    from core.media import children

    started = threading.Event()

    def shutdown(signum: int) -> None:
        name = signal.Signals(signum).name
        logging.getLogger("ytap_mcp").info("%s: stopping (jobs cancelled, children killed)", name)
        try:
            _stop(runtime, _SIGNAL_JOBS_S, reason=f"interrupted: the server received {name} and stopped; "
                                                 "start the job again")
        except Exception:
            logging.getLogger("ytap_mcp").exception("shutdown after %s failed", name)
        finally:
            os._exit(0)

    def watchdog() -> None:  # the orderly stop overran: no child outlives the server all the same
        children.kill_all()
        os._exit(1)

    def on_signal(signum: int, _frame: object) -> None:
        if started.is_set():
            return
        started.set()
        threading.Timer(_SIGNAL_DEADLINE_S, watchdog).start()
        threading.Thread(target=shutdown, args=(signum,), name="ytap-shutdown").start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)


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


def _models_fetch(settings: Settings) -> int:
    """Download local:kokoro's weights (SHA-256 checked) with a progress bar on stderr."""
    from core.errors import YtapError
    from core.providers.kokoro import fetch_weights, weights_folder

    shown: dict[str, int] = {}

    def bar(name: str, done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if shown.get(name) != percent:
            shown[name] = percent
            filled = percent * 30 // 100
            sys.stderr.write(f"\r  {name:<20} [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}% "
                             f"{done / 1e6:7.1f}/{total / 1e6:.1f} MB")
            sys.stderr.write("\n" if done >= total else "")
            sys.stderr.flush()

    try:
        paths = fetch_weights(settings, progress=bar)
    except YtapError as exc:
        sys.stderr.write(f"\nytap-mcp models fetch kokoro: {exc}\n")
        return 1
    sys.stderr.write(f"kokoro weights ready in {weights_folder(settings)} ({len(paths)} files, SHA-256 checked)\n")
    return 0


def _doctor(settings: Settings) -> int:
    """Print what is found and configured; never a key's value."""
    from core.providers.registry import ProviderCatalog

    print(f"ytap-mcp doctor\n  YTAP_HOME      {settings.home}")
    print(f"  models         {settings.models_path} (local:kokoro's weights: `ytap-mcp models fetch kokoro`)")
    ok = _doctor_ffmpeg()
    ok = _doctor_scaleout(settings) and ok
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
    for capability in ("video", "speech", "image", "music"):
        chain = catalog.chain_ids(capability)  # type: ignore[arg-type]
        others = [i for i in catalog.known_ids(capability) if i not in chain]  # type: ignore[arg-type]
        for pid in chain + others:
            reason = catalog.get(pid).unavailable_reason()
            where = "in chain" if pid in chain else "not in chain"
            state = "available" if reason is None else f"unavailable: {reason}"
            print(f"    {capability:<6} {pid:<36} {where:<13} {state}")
    return 0 if ok else 1


def _worker(settings: Settings, max_jobs: int) -> int:
    """``ytap-mcp worker``: the tools' jobs, run for the replicas that start them (until SIGTERM/SIGINT)."""
    import asyncio
    import signal

    if settings.temporal_address is None:
        print("ytap-mcp worker needs YTAP_TEMPORAL_ADDRESS (and YTAP_DATABASE_URL for a registry every node shares)",
              file=sys.stderr)
        return 2
    from core.runtime import Runtime
    from core.scaleout.temporal import run_worker
    from tools import TOOLS

    by_name = {info.name: info.fn for info in TOOLS}

    async def call_tool(rt: Runtime, tool: str, arguments: dict) -> object:
        return await by_name[tool](rt, None, **{**arguments, "wait_seconds": 0})

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run_worker(runtime, call_tool, stop=stop, max_jobs=max_jobs)

    runtime = Runtime.create(settings, worker=True)
    try:
        asyncio.run(main())
    finally:
        runtime.close()
    return 0


def _doctor_scaleout(settings: Settings) -> bool:
    """Where the registry is and whether it answers; where jobs run (never the database's password)."""
    from core.assets.db import Database
    from core.errors import YtapError

    if settings.database_url is None and not settings.db_path.exists():
        print(f"  registry       sqlite {settings.db_path} (made at the first start)")
        return True
    try:
        db = Database(settings.db_path, settings.database_url.get() if settings.database_url else None)
        where, ok = f"{db.describe()} (answers)", True
        db.close()
    except YtapError as exc:
        where, ok = f"NOT AVAILABLE: {exc.message}", False
    print(f"  registry       {where}")
    if settings.temporal_address is None:
        print("  jobs           in this process")
        return ok
    where = (f"temporal {settings.temporal_address} namespace {settings.temporal_namespace} "
             f"task queue {settings.temporal_task_queue}")
    try:
        import asyncio

        from temporalio.client import Client

        asyncio.run(asyncio.wait_for(Client.connect(settings.temporal_address,
                                                    namespace=settings.temporal_namespace), 10))
        print(f"  jobs           {where} (answers)")
    except Exception as exc:  # doctor reports, it does not crash
        print(f"  jobs           {where} NOT AVAILABLE: {type(exc).__name__}: {exc}")
        ok = False
    return ok


def _doctor_ffmpeg() -> bool:
    """Which ffmpeg is used and why; what every other build found here lacks."""
    from core.errors import YtapError
    from core.media.ffmpeg import ffmpeg_builds, locate_ffmpeg

    try:
        ff = locate_ffmpeg()
    except YtapError as exc:  # doctor reports, it does not crash
        print(f"  ffmpeg         NOT USABLE: {exc.message}")
        return False
    print(f"  ffmpeg         {ff.path} (from {ff.source}, version {ff.version})")
    print(f"  ffmpeg why     {ff.reason}")
    said = {ff.path, *(c.path for c in ff.passed_over)}  # the reason already says what those lack
    for other in ffmpeg_builds():
        if other.path not in said:
            print(f"  ffmpeg other   {other.describe()}")
    return True


def passthrough_env() -> dict[str, str]:
    """The environment a server subprocess needs (the MCP SDK passes only a minimal one)."""
    return {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}

