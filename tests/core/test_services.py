"""Services with scripted providers: what lands on disk and on the record."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from core.assets.atomic import staged
from core.assets.props import SceneProps
from core.config import Settings
from core.errors import ProvidersExhausted, Unavailable
from core.jobs import JobHandle
from core.media.ffmpeg import run_ffmpeg
from core.media.probe import probe
from core.providers.testing import ScriptedProvider
from core.runtime import Runtime
from core.schemas import SceneRequest, SceneResult
from core.services import scenes
from core.services.common import asset_fields
from core.services.tracking import provider_report


def _vendor_clip(spec, out: Path) -> None:
    """What a vendor might return: another size and fps, no audio, shorter than asked."""
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x240:r=24:d=0.8", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                "-f", "mp4", str(out)])


def _runtime(tmp_path: Path, *providers: ScriptedProvider, **env: str) -> Runtime:
    return Runtime.create(Settings.from_env({"YTAP_HOME": str(tmp_path / "home"), **env}), extra_providers=providers)


def _generate(rt: Runtime, req: SceneRequest):
    return anyio.run(scenes.generate_scene, rt, scenes.prepare(rt, req),
                     JobHandle(job_id="job_" + "0" * 20, kind="generate_scene"))


def test_scene_from_any_provider_is_normalised_to_the_contract(tmp_path: Path) -> None:
    vendor = ScriptedProvider("vendor:clip", "video", [_vendor_clip])
    rt = _runtime(tmp_path, vendor)
    try:
        result = _generate(rt, SceneRequest(video_id="v", scene_index=1, prompt="x", duration_s=1.5,
                                            providers=["vendor:clip"]))
    finally:
        rt.close()
    info = probe(result.path, count_frames=True)
    assert info.video and info.audio
    assert (info.video.width, info.video.height, info.video.fps, info.video.frames) == (1920, 1080, 30.0, 45)
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 48000, 2)
    assert result.provider == "vendor:clip"
    assert not [p for p in Path(result.path).parent.iterdir() if p.name.startswith(".")]


def test_scene_request_is_resolved_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan holds the chain ids and the cache lookup: the job neither resolves nor looks up again."""
    rt = _runtime(tmp_path, ScriptedProvider("vendor:clip", "video", [_vendor_clip]))
    counts = {"chain_ids": 0, "get": 0}

    def counting(name: str, target: object) -> None:
        real = getattr(target, name)

        def count(*args: object, **kw: object) -> object:
            counts[name] += 1
            return real(*args, **kw)

        monkeypatch.setattr(target, name, count)

    counting("chain_ids", rt.catalog)
    counting("get", rt.registry.cache)
    try:
        req = SceneRequest(video_id="v", scene_index=1, prompt="x", duration_s=1, providers=["vendor:clip"])
        plan = scenes.prepare(rt, req)
        assert plan.hit is None and plan.chain_ids == ("vendor:clip",)
        anyio.run(scenes.generate_scene, rt, plan, JobHandle(job_id="job_" + "0" * 20, kind="generate_scene"))
        assert counts == {"chain_ids": 1, "get": 1}
        again = scenes.prepare(rt, req)  # an identical request: the plan carries the hit, nothing runs
        assert again.hit is not None and scenes.from_cache(rt, again).cached
    finally:
        rt.close()


def test_narration_looks_the_workspace_voice_up_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.schemas import NarrationRequest
    from core.services import narration

    rt = _runtime(tmp_path)
    looked_up: list[str] = []
    real = rt.registry.voices.get
    monkeypatch.setattr(rt.registry.voices, "get", lambda ws, name, **kw: looked_up.append(name) or real(ws, name, **kw))
    try:
        req = NarrationRequest(video_id="v", text="One short line.", voice="en-gb", providers=["local:espeak-ng"])
        plan = narration.prepare(rt, req)
        result = anyio.run(narration.synthesize_narration, rt, plan,
                           JobHandle(job_id="job_" + "0" * 20, kind="synthesize_narration"))
    finally:
        rt.close()
    assert looked_up == ["en-gb"] and plan.voice is None  # a provider's voice name, not a workspace voice
    assert (result.sample_rate, result.channels, len(result.segments)) == (48000, 2, 1)


def test_scene_budget_spent_by_failed_paid_attempts_counts(tmp_path: Path) -> None:
    class Paid(ScriptedProvider):
        def estimate_cost_usd(self, spec) -> float:
            return 0.3

    vendor = Paid("vendor:paid", "video", [Unavailable("billed, then broke", cost_usd=0.3)] * 3, paid=True)
    rt = _runtime(tmp_path, vendor, YTAP_BUDGET_USD="0.5")
    rt.catalog.retry = type(rt.catalog.retry)(attempts=1)
    try:
        first = _generate(rt, SceneRequest(video_id="v", scene_index=1, prompt="x", duration_s=1,
                                           providers=["vendor:paid", "local:placeholder"]))
        second = _generate(rt, SceneRequest(video_id="v", scene_index=2, prompt="y", duration_s=1,
                                            providers=["vendor:paid", "local:placeholder"]))
        report = provider_report(rt, "default", "v")
    finally:
        rt.close()
    assert first.attempts[0].cost_usd == 0.3 and first.cost_usd == pytest.approx(0.3)
    assert second.attempts[0].error_code == "budget_exceeded"  # 0.3 spent, 0.3 more would pass 0.5
    assert len(vendor.calls) == 1
    assert report.totals.cost_usd == pytest.approx(0.3)
    assert report.totals.by_provider["vendor:paid"] == pytest.approx(0.3)
    assert report.totals.by_capability["video"] == pytest.approx(0.3)


def test_scene_budget_holds_across_concurrent_jobs_of_one_video(tmp_path: Path) -> None:
    """Two scene jobs of one video at once, $0.50 left, a paid vendor at $0.30 a clip: the first holds its
    $0.30 while the vendor works, so the second sees $0.20 left and goes to the free tier (before the
    holds, both read $0.50 at their start and both paid: $0.60 on a $0.50 budget)."""

    class Paid(ScriptedProvider):
        def estimate_cost_usd(self, spec) -> float:
            return 0.3

    vendor = Paid("vendor:paid", "video", [_vendor_clip] * 2, paid=True, cost_usd=0.3, latency_s=1.0)
    rt = _runtime(tmp_path, vendor, YTAP_BUDGET_USD="0.5")

    async def both() -> list:
        results: list = []

        async def one(i: int) -> None:
            req = SceneRequest(video_id="v", scene_index=i, prompt=f"scene {i}", duration_s=1,
                               providers=["vendor:paid", "local:placeholder"])
            results.append(await scenes.generate_scene(rt, scenes.prepare(rt, req),
                                                       JobHandle(job_id=f"job_{i:020d}", kind="generate_scene")))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 1)
            await anyio.sleep(0.3)  # the first is with the vendor
            tg.start_soon(one, 2)
        return sorted(results, key=lambda r: r.scene_index)

    try:
        first, second = anyio.run(both)
        spent = rt.registry.assets.spent_usd("default", "v")
        held = rt.registry.assets._db.query("SELECT COUNT(*) AS n FROM budget_holds")[0]["n"]
    finally:
        rt.close()
    assert first.provider == "vendor:paid" and second.provider == "local:placeholder"
    skipped = second.attempts[0]
    assert skipped.error_code == "budget_exceeded" and "$0.2000 left" in skipped.reason
    assert len(vendor.calls) == 1 and spent == pytest.approx(0.3) and held == 0  # recorded, so no longer held


def test_scene_all_providers_failing_records_attempts_without_an_asset(tmp_path: Path) -> None:
    vendor = ScriptedProvider("vendor:down", "video", [Unavailable("503")] * 3)
    rt = _runtime(tmp_path, vendor)
    rt.catalog.retry = type(rt.catalog.retry)(attempts=1)
    try:
        with pytest.raises(ProvidersExhausted):
            _generate(rt, SceneRequest(video_id="v", scene_index=1, prompt="x", duration_s=1,
                                       providers=["vendor:down"]))
        report = provider_report(rt, "default", "v")
    finally:
        rt.close()
    assert report.totals.assets == 0 and report.totals.failed_attempts == 1
    assert not rt.paths("default", "v").scene(1).exists()


def test_report_shows_damaged_and_missing_assets_after_a_restart_with_what_to_do(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    paths = rt.paths("default", "v")
    paths.ensure()
    for n, body in ((1, b"kept"), (2, b"overwritten"), (3, b"deleted")):
        with staged(paths.scene(n)) as tmp:
            tmp.write_bytes(body)
            rt.registry.assets.add(paths, kind="scene", path=paths.scene(n), staged=tmp, provider="test:clip",
                                  model=None, cost_usd=0.0, props=SceneProps(), attempts=[], capability="video", scene_index=n)
    rt.close()
    paths.scene(2).write_bytes(b"0verwritten")  # same size, other bytes
    os.utime(paths.scene(2), ns=(2, 2))  # another mtime, whatever the clock's granularity
    paths.scene(3).unlink()

    rt = _runtime(tmp_path)  # the restart's check marks them; the report says so
    try:
        report = provider_report(rt, "default", "v")
        rows = {r.scene_index: r for r in rt.registry.assets.current("default", "v")}
        fields = asset_fields(paths, rows[3], [])
    finally:
        rt.close()
    by_scene = {a["scene_index"]: a for a in report.assets}
    assert {n: a["state"] for n, a in by_scene.items()} == {1: "ok", 2: "damaged", 3: "missing"}
    assert "action" not in by_scene[1]
    assert "not the one that was made" in by_scene[2]["action"]
    assert "generate_scene again with scene_index=2" in by_scene[2]["action"]
    assert "gone" in by_scene[3]["action"] and "scene_index=3" in by_scene[3]["action"]
    assert fields["state"] == "missing" and SceneResult(**fields, scene_index=3, prompt="x").state == "missing"


def test_report_shows_a_file_deleted_while_the_server_runs_as_missing(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    try:
        paths = rt.paths("default", "v")
        paths.ensure()
        with staged(paths.scene(1)) as tmp:
            tmp.write_bytes(b"clip")
            rt.registry.assets.add(paths, kind="scene", path=paths.scene(1), staged=tmp, provider="test:clip",
                                  model=None, cost_usd=0.0, props=SceneProps(), attempts=[], capability="video", scene_index=1)
        assert [a["state"] for a in provider_report(rt, "default", "v").assets] == ["ok"]
        paths.scene(1).unlink()  # no restart: the report looks at the file itself
        (entry,) = provider_report(rt, "default", "v").assets
    finally:
        rt.close()
    assert entry["state"] == "missing" and "generate_scene again with scene_index=1" in entry["action"]


def test_scene_budget_hold_of_a_job_that_ended_unrecorded_is_dropped_at_start(tmp_path: Path) -> None:
    """A process killed mid-call leaves its hold; the job is then failed (interrupted), so the hold no
    longer counts, and the next start removes it."""
    rt = _runtime(tmp_path, YTAP_BUDGET_USD="1.0")
    try:
        rt.registry.jobs.create("job_" + "7" * 20, "generate_scene", "default", "v")
        hold, left = rt.registry.assets.hold_budget("job_" + "7" * 20, "default", "v", "vendor:paid", 0.8, 1.0)
        assert hold is not None and left == pytest.approx(1.0)
        assert rt.registry.assets.hold_budget("job_" + "8" * 20, "default", "v", "vendor:paid", 0.3, 1.0)[0] is None
        rt.registry.jobs.update("job_" + "7" * 20, status="failed")
        assert rt.registry.assets.hold_budget("job_" + "8" * 20, "default", "v", "vendor:paid", 0.3, 1.0)[0] is not None
    finally:
        rt.close()
    again = _runtime(tmp_path, YTAP_BUDGET_USD="1.0")
    try:
        rows = again.registry.assets._db.query("SELECT job_id FROM budget_holds")
    finally:
        again.close()
    assert [r["job_id"] for r in rows] == ["job_" + "8" * 20]  # no job row: a direct caller's, kept
