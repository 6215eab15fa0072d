"""The server through the SDK's in-memory client, as an agent sees it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from core.media.probe import is_faststart, probe
from tests.mcp_helpers import CONTRACT_TOOLS, call, error_text, finish
from ytap_mcp.server import INSTRUCTIONS, YtapServer
from ytap_mcp.tool_schemas import COMMON_PARAMETERS


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_server_lists_the_contract_tools_typed_in_both_eras(server: YtapServer, mode: str) -> None:
    async def main() -> None:
        async with Client(server, mode=mode) as client:
            tools = (await client.list_tools()).tools
            assert {t.name for t in tools} == CONTRACT_TOOLS and len(tools) == len(CONTRACT_TOOLS)
            for t in tools:
                assert t.description and len(t.description) > 40, t.name
                assert t.output_schema and t.output_schema.get("type") == "object", t.name
                for pname, prop in t.input_schema["properties"].items():
                    if pname in COMMON_PARAMETERS:  # described once, in the server's instructions
                        assert pname in INSTRUCTIONS, pname
                        continue
                    assert "description" in json.dumps(prop), f"{t.name}.{pname} has no description"
                    assert "anyOf" not in prop, f"{t.name}.{pname} is an optional-union shape"
            by = {t.name: t for t in tools}
            # Hints are sent only where they differ from the spec's defaults (open world, destructive).
            report, scene, status = by["provider_report"], by["generate_scene"], by["job_status"]
            assert report.annotations.read_only_hint is True and report.annotations.idempotent_hint is True
            assert scene.annotations is None or scene.annotations.open_world_hint in (None, True)
            assert status.annotations.open_world_hint is False
            assert by["assemble_video"].annotations.open_world_hint is False
            assert by["clone_voice"].annotations.destructive_hint is False
            scene_in = scene.input_schema
            assert set(scene_in["required"]) == {"video_id", "scene_index", "prompt"}
            assert scene_in["properties"]["scene_index"]["maximum"] == 999
            assert scene_in["properties"]["wait_seconds"]["maximum"] == 50
            assert scene_in["properties"]["aspect_ratio"]["enum"] == ["16:9", "9:16"]
            assert "job_status" in (client.instructions or "")

    anyio.run(main)


@pytest.mark.slow
def test_server_whole_job_produces_a_probed_video(server: YtapServer, tmp_path: Path) -> None:
    progress: list[float] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(p)

    async def main() -> dict[str, Any]:
        async with Client(server) as client:
            for i in (1, 2):
                env = await call(client, "generate_scene", {"video_id": "v1", "scene_index": i, "prompt": f"scene {i}",
                                                             "duration_s": 1, "wait_seconds": 30},
                                  progress_callback=on_progress)
                scene = await finish(client, env)
                assert scene["provider"] == "local:placeholder" and scene["width"] == 1920
                assert scene["uri"] == f"ytap://default/v1/scenes/scene_00{i}.mp4"
            narration = await finish(client, await call(client, "synthesize_narration", {
                "video_id": "v1", "segments": ["One.", "Two."], "wait_seconds": 30}))
            assert [s["index"] for s in narration["segments"]] == [1, 2]
            assert narration["sample_rate"] == 48000 and narration["channels"] == 2
            assert Path(narration["srt_path"]).read_text().startswith("1\n00:00:00,")
            thumb = await finish(client, await call(client, "make_thumbnail", {"video_id": "v1", "title": "Hi there"}))
            assert (thumb["width"], thumb["height"]) == (1280, 720) and thumb["bytes"] < 2 * 1024 * 1024
            final = await finish(client, await call(client, "assemble_video",
                                                      {"video_id": "v1", "height": 720, "wait_seconds": 40}))
            report = await call(client, "provider_report", {"video_id": "v1"})
            return {"final": final, "report": report}

    out = anyio.run(main)
    final = out["final"]
    info = probe(final["path"], count_frames=True)
    assert info.video and info.audio
    assert (info.video.codec, info.video.profile, info.video.pix_fmt) == ("h264", "High", "yuv420p")
    assert (info.video.width, info.video.height, info.video.fps) == (1280, 720, 30.0)
    assert info.video.frames == 60  # two 1 s scenes, narration shorter than the scenes
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 48000, 2)
    assert is_faststart(final["path"])
    assert final["youtube_readiness"]["ready"] is True, final["youtube_readiness"]
    assert final["encode_passes"] == 1
    report = out["report"]
    assert report["totals"]["assets"] == 5
    assert {a["provider"] for a in report["assets"]} == {"local:placeholder", "local:espeak-ng", "local:pillow",
                                                         "local:ffmpeg"}
    assert progress, "no progress notification reached the client"


def test_server_job_protocol_submit_then_poll(server: YtapServer) -> None:
    async def main() -> None:
        async with Client(server) as client:
            env = await call(client, "generate_scene", {"video_id": "v2", "scene_index": 1, "prompt": "x",
                                                         "duration_s": 2, "wait_seconds": 0})
            assert env["status"] in ("queued", "running") and env["job_id"].startswith("job_")
            assert "result" not in env  # an optional field that holds nothing is left out
            result = await finish(client, env)
            assert result["duration_s"] == pytest.approx(2.0, abs=0.05)
            again = await call(client, "job_status", {"job_id": env["job_id"]})
            assert again["status"] == "succeeded" and again["result"]["asset_id"] == result["asset_id"]
            res = await client.read_resource(f"ytap://jobs/{env['job_id']}")
            assert json.loads(res.contents[0].text)["status"] == "succeeded"

    anyio.run(main)


def test_server_cancel_job_leaves_no_file(server: YtapServer) -> None:
    async def main() -> tuple[dict[str, Any], Path]:
        async with Client(server) as client:
            env = await call(client, "generate_scene", {"video_id": "v3", "scene_index": 1, "prompt": "long one",
                                                         "duration_s": 60, "wait_seconds": 0})
            await anyio.sleep(0.5)
            cancelled = await call(client, "cancel_job", {"job_id": env["job_id"]})
            final = await call(client, "job_status", {"job_id": env["job_id"], "wait_seconds": 20})
            return final, server.runtime.paths("default", "v3").scenes_dir

    final, scenes_dir = anyio.run(main)
    assert final["status"] == "cancelled"
    assert list(scenes_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("tool", "args", "needle"),
    [
        ("generate_scene", {"video_id": "../etc", "scene_index": 1, "prompt": "x"}, "video_id"),
        ("generate_scene", {"video_id": "v", "scene_index": 0, "prompt": "x"}, "scene_index"),
        ("generate_scene", {"video_id": "v", "scene_index": 1, "prompt": ""}, "prompt"),
        ("generate_scene", {"video_id": "v", "scene_index": 1, "prompt": "x", "providers": ["nope:1"]},
         "local:placeholder"),
        ("generate_scene", {"video_id": "v", "scene_index": 1, "prompt": "x", "workspace_id": "A B"}, "workspace_id"),
        ("synthesize_narration", {"video_id": "v"}, "text or segments"),
        ("make_thumbnail", {"video_id": "v", "title": "x" * 101}, "title"),
        ("assemble_video", {"video_id": "empty-video"}, "generate_scene first"),
        ("assemble_video", {"video_id": "v", "scenes": ["../../../../etc/passwd"]}, "outside"),
        ("assemble_video", {"video_id": "v", "scenes": ["file:///etc/passwd"]}, "ytap://"),
        ("job_status", {"job_id": "job_../../x"}, "job_id"),
        ("job_status", {"job_id": "job_ffffffffffffffffffff"}, "no job"),
        ("provider_report", {"video_id": "Bad/Id"}, "video_id"),
    ],
)
def test_server_bad_input_is_a_tool_error_saying_what_to_change(server: YtapServer, tool: str, args: dict, needle: str) -> None:
    async def main() -> str:
        async with Client(server) as client:
            return await error_text(client, tool, args)

    assert needle in anyio.run(main)


def test_server_chain_failure_falls_back_and_is_on_the_record(server: YtapServer, failing_video) -> None:
    async def main() -> tuple[dict[str, Any], str, dict[str, Any]]:
        async with Client(server) as client:
            ok = await finish(client, await call(client, "generate_scene", {
                "video_id": "v4", "scene_index": 1, "prompt": "x", "duration_s": 1,
                "providers": ["test:down", "local:placeholder"]}))
            err = await error_text(client, "generate_scene", {"video_id": "v4", "scene_index": 2, "prompt": "x",
                                                               "duration_s": 1, "providers": ["test:down"]})
            report = await call(client, "provider_report", {"video_id": "v4"})
            return ok, err, report

    ok, err, report = anyio.run(main)
    assert [(a["provider"], a["outcome"]) for a in ok["attempts"]] == [("test:down", "failed"),
                                                                       ("local:placeholder", "succeeded")]
    assert ok["attempts"][0]["reason"] == "HTTP 503 from vendor"
    assert "providers_exhausted" in err and "HTTP 503 from vendor" in err
    down = next(p for p in report["providers"] if p["id"] == "test:down")
    assert down["calls"] == 2 and down["failures"] == 2
    manifest = json.loads(Path(ok["path"]).parent.parent.joinpath("manifest.json").read_text())
    assert manifest["failed_generations"][0]["provider"] == "test:down"


def test_server_resources_serve_files_with_their_mime_type_and_refuse_escapes(server: YtapServer) -> None:
    async def main() -> None:
        async with Client(server) as client:
            await finish(client, await call(client, "make_thumbnail", {"video_id": "v5", "title": "Res"}))
            manifest = await client.read_resource("ytap://default/v5/manifest")
            assert json.loads(manifest.contents[0].text)["assets"][0]["kind"] == "thumbnail"
            thumb = await client.read_resource("ytap://default/v5/thumbnail.jpg")
            assert thumb.contents[0].mime_type == "image/jpeg" and thumb.contents[0].blob
            templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
            assert {"ytap://jobs/{job_id}", "ytap://{workspace_id}/{video_id}/manifest"} <= templates
            listed = {str(r.uri) for r in (await client.list_resources()).resources}
            assert "ytap://default/v5/manifest" in listed
            for bad in ("ytap://default/v5/../../../../etc/passwd", "ytap://default/v5/%2e%2e/%2e%2e/ytap.db",
                        "ytap://default/v5/nothing.mp4"):
                with pytest.raises(Exception):
                    await client.read_resource(bad)

    anyio.run(main)


def test_server_produce_video_prompt_gives_the_recipe(server: YtapServer) -> None:
    async def main() -> str:
        async with Client(server) as client:
            prompts = (await client.list_prompts()).prompts
            assert [p.name for p in prompts] == ["produce_video"]
            got = await client.get_prompt("produce_video", {"topic": "How bees talk", "minutes": "2",
                                                            "aspect_ratio": "9:16"})
            return got.messages[0].content.text

    text = anyio.run(main)
    assert "generate_scene" in text and "job_status" in text and 'video_id "how-bees-talk"' in text
    assert "15 scenes" in text
    assert "generate_music(video_id, mood=" in text and "duration_s=120" in text
    assert text.index("generate_music") < text.index("assemble_video(")
    # the narration first, and each scene as long as its sentence: the words play over their own picture
    assert text.index("synthesize_narration(") < text.index("generate_scene(")
    assert "duration_s=<that>" in text and "i+1's start" in text


@pytest.mark.slow
def test_server_results_carry_links_and_small_inline_previews(server: YtapServer, tmp_path: Path) -> None:
    import base64

    sizes: dict[str, int] = {}

    async def made(client: Client, name: str, args: dict[str, Any]):
        result = await client.call_tool(name, {"video_id": "pv", "wait_seconds": 40, **args})
        assert not result.is_error, result.content
        sizes[name] = len(result.model_dump_json(by_alias=True))
        assert result.structured_content["status"] == "succeeded"
        return result

    async def main() -> dict[str, Any]:
        async with Client(server) as client:
            out = {}
            for i in (1, 2):
                out[f"scene{i}"] = await made(client, "generate_scene", {"scene_index": i, "prompt": f"p {i}",
                                                                         "duration_s": 1})
            out["narration"] = await made(client, "synthesize_narration", {"text": "Hello there, viewer."})
            out["thumbnail"] = await made(client, "make_thumbnail", {"title": "Preview me"})
            out["final"] = await made(client, "assemble_video", {"height": 720})
            return out

    out = anyio.run(main)
    for name in ("scene1", "thumbnail", "final"):
        images = [c for c in out[name].content if c.type == "image"]
        links = [c for c in out[name].content if c.type == "resource_link"]
        assert len(images) == 1 and images[0].mime_type == "image/jpeg", name
        jpeg = base64.b64decode(images[0].data)
        assert jpeg[:3] == b"\xff\xd8\xff" and len(jpeg) <= 500_000, name
        assert links and str(links[0].uri).startswith("ytap://default/pv/"), name
    narration_links = {str(c.uri) for c in out["narration"].content if c.type == "resource_link"}
    assert narration_links == {"ytap://default/pv/audio/narration.wav", "ytap://default/pv/audio/narration.srt"}
    assert max(sizes.values()) < 1024 * 1024, sizes


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_server_unknown_job_resource_and_prompt_are_invalid_params(server: YtapServer, mode: str) -> None:
    from mcp.shared.exceptions import MCPError

    async def main() -> list[int]:
        codes = []
        async with Client(server, mode=mode) as client:
            for call in (lambda: client.read_resource("ytap://jobs/job_0123456789abcdef0123"),
                         lambda: client.read_resource("ytap://default/nope/final_video.mp4"),
                         lambda: client.get_prompt("nope", {})):
                with pytest.raises(MCPError) as info:
                    await call()
                codes.append(info.value.error.code)
        return codes

    assert anyio.run(main) == [-32602, -32602, -32602]
