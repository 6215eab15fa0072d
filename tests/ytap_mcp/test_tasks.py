"""The MCP tasks extension (io.modelcontextprotocol/tasks, 2026-07-28): the SDK's client declaring it,
over the in-memory transport and over streamable HTTP, plus the raw JSON-RPC wire.

``pytest -s -k transcript`` prints a round trip (call -> task, tasks/get until completed, tasks/cancel of another).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, EmptyResult

from core.media.probe import probe
from core.providers.testing import ScriptedProvider
from ytap_mcp.server import YtapServer
from ytap_mcp.tasks import (
    TASKS_EXTENSION,
    CancelTaskRequest,
    CreateTaskResult,
    GetTaskRequest,
    GetTaskResult,
    TaskIdParams,
    TasksClientExtension,
    UpdateTaskParams,
    UpdateTaskRequest,
)
from tests.ytap_mcp.test_http import _server

MODERN = "2026-07-28"
UNKNOWN = "job_0123456789abcdef0123"


def _scene(video_id: str, index: int, duration_s: float = 1, providers: tuple[str, ...] = ("local:placeholder",)
           ) -> dict[str, Any]:
    return {"video_id": video_id, "scene_index": index, "prompt": "a lighthouse at dusk", "duration_s": duration_s,
            "providers": list(providers)}


def _tasks_client(target: Any) -> Client:
    return Client(target, mode=MODERN, extensions=[TasksClientExtension(max_poll_s=0.2)])


async def _get(client: Client, task_id: str) -> GetTaskResult:
    return await client.session.send_request(GetTaskRequest(params=TaskIdParams(task_id=task_id)), GetTaskResult)


async def _cancel(client: Client, task_id: str) -> EmptyResult:
    return await client.session.send_request(CancelTaskRequest(params=TaskIdParams(task_id=task_id)), EmptyResult)


async def _job_status(client: Client, job_id: str) -> dict[str, Any]:
    result = await client.call_tool("job_status", {"job_id": job_id})
    assert not result.is_error, result.content
    return result.structured_content


async def _until_terminal(client: Client, task_id: str, seen: list[GetTaskResult]) -> GetTaskResult:
    with anyio.fail_after(60):
        while True:
            task = await _get(client, task_id)
            seen.append(task)
            if task.status != "working":
                return task
            await anyio.sleep(0.05)


async def _task_call(client: Client, name: str, args: dict[str, Any]) -> CreateTaskResult:
    created = await client.session.call_tool(name, args, allow_claimed=True)
    assert isinstance(created, CreateTaskResult), created
    return created


def test_tasks_declared_client_gets_a_task_and_its_result_agrees_with_job_status(server: YtapServer) -> None:
    async def main() -> tuple[CreateTaskResult, list[GetTaskResult], dict[str, Any]]:
        async with _tasks_client(server) as client:
            created = await _task_call(client, "generate_scene", _scene("t1", 1, duration_s=2))
            seen: list[GetTaskResult] = []
            await _until_terminal(client, created.task_id, seen)
            # the server decides per call: the same request again is a cache hit, answered at once, not a task
            again = await client.session.call_tool("generate_scene", _scene("t1", 1, duration_s=2), allow_claimed=True)
            assert isinstance(again, CallToolResult) and again.structured_content["result"]["cached"] is True
            return created, seen, await _job_status(client, created.task_id)

    created, seen, job = anyio.run(main)
    assert created.result_type == "task" and created.status == "working"
    assert re.fullmatch(r"job_[0-9a-f]{20}", created.task_id)  # the task is the job
    assert created.ttl_ms is None and created.poll_interval_ms == 2000
    assert created.created_at.endswith("Z") and created.last_updated_at >= created.created_at
    working = [t for t in seen if t.status == "working"]
    progress = [t.meta["ytap/progress"] for t in working]
    assert progress == sorted(progress) and all(0 <= p < 1 for p in progress)
    assert all(re.match(r"(queued|running), \d+%: ", t.status_message) for t in working)
    done = seen[-1]
    assert done.status == "completed" and done.error is None and done.result is not None
    assert done.meta["ytap/progress"] == 1.0 and done.meta["ytap/job_status"] == "succeeded"
    assert job["status"] == "succeeded" and done.result["structuredContent"] == job
    kinds = [block["type"] for block in done.result["content"]]
    assert kinds == ["text", "resource_link", "image"]  # what the tool itself answers for a finished scene
    assert json.loads(done.result["content"][0]["text"]) == job
    info = probe(job["result"]["path"])
    assert info.video and info.video.duration_s == pytest.approx(2.0, abs=0.1)


def test_tasks_cancel_of_another_task_ends_cancelled_and_job_status_agrees(server: YtapServer) -> None:
    async def main() -> tuple[GetTaskResult, GetTaskResult, dict[str, Any], EmptyResult]:
        async with _tasks_client(server) as client:
            quick = await _task_call(client, "generate_scene", _scene("t2", 1))
            slow = await _task_call(client, "generate_scene", _scene("t2", 2, duration_s=60))
            ack = await _cancel(client, slow.task_id)
            cancelled = await _until_terminal(client, slow.task_id, [])
            completed = await _until_terminal(client, quick.task_id, [])
            return cancelled, completed, await _job_status(client, slow.task_id), ack

    cancelled, completed, job, ack = anyio.run(main)
    assert ack.result_type == "complete"
    assert cancelled.status == "cancelled" and cancelled.result is None and cancelled.poll_interval_ms is None
    assert cancelled.status_message == "cancelled by the client" == job["message"]
    assert job["status"] == "cancelled"
    assert completed.status == "completed"  # the other task is untouched
    scenes = server.runtime.paths("default", "t2").scenes_dir
    assert sorted(p.name for p in scenes.iterdir() if not p.name.startswith(".")) == ["scene_001.mp4"]


def test_tasks_a_failed_job_completes_with_the_tool_error(server: YtapServer, failing_video: ScriptedProvider
                                                         ) -> None:
    """The spec keeps `failed` for JSON-RPC errors; a job failure is a tool error (isError) in a completed task."""
    failing_video.latency_s = 0.5  # the vendor answers 503 after the call has been answered with the task

    async def main() -> tuple[GetTaskResult, dict[str, Any]]:
        async with _tasks_client(server) as client:
            created = await _task_call(client, "generate_scene", _scene("t3", 1, providers=("test:down",)))
            ended = await _until_terminal(client, created.task_id, [])
            return ended, await _job_status(client, created.task_id)

    ended, job = anyio.run(main)
    assert ended.status == "completed" and ended.error is None
    assert ended.result["isError"] is True
    assert job["status"] == "failed" and ended.result["structuredContent"] == job
    text = ended.result["content"][0]["text"]
    assert f"generate_scene job {job['job_id']} failed [{job['error']['code']}]" in text
    assert "test:down: failed (HTTP 503 from vendor)" in text
    assert ended.status_message.startswith(f"failed [{job['error']['code']}]: ")


def test_tasks_undeclared_clients_see_no_change(server: YtapServer) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with _tasks_client(server) as declared:
            out["declared_tools"] = (await declared.list_tools()).model_dump()["tools"]
        for mode, extensions in (("modern", []), ("legacy", [TasksClientExtension()])):
            async with Client(server, mode=MODERN if mode == "modern" else "legacy", extensions=extensions) as client:
                out[f"{mode}_tools"] = (await client.list_tools()).model_dump()["tools"]
                result = await client.call_tool("generate_scene", {**_scene(f"u{mode}", 1), "wait_seconds": 0})
                out[f"{mode}_envelope"] = result.structured_content
                with pytest.raises(MCPError) as err:
                    await client.session.send_request(GetTaskRequest(params=TaskIdParams(
                        task_id=result.structured_content["job_id"])), GetTaskResult)
                out[f"{mode}_get_error"] = err.value.error
        return out

    out = anyio.run(main)
    assert out["declared_tools"] == out["modern_tools"]  # the extension adds no tool and changes none
    assert {t["name"] for t in out["legacy_tools"]} == {t["name"] for t in out["modern_tools"]}
    for mode in ("modern", "legacy"):
        env = out[f"{mode}_envelope"]
        assert set(env) == {"job_id", "kind", "status", "progress", "message"}  # no result or error yet: left out
        assert env["status"] in ("queued", "running") and env["kind"] == "generate_scene"
    # a client that did not declare the extension: -32021 naming it; the 2025 wire has no such method
    assert out["modern_get_error"].code == -32021
    assert out["modern_get_error"].data == {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}}
    assert out["legacy_get_error"].code == -32601


def test_tasks_unknown_or_malformed_task_id_is_invalid_params(server: YtapServer) -> None:
    async def main() -> tuple[list[MCPError], EmptyResult]:
        errors = []
        async with _tasks_client(server) as client:
            for request in (GetTaskRequest(params=TaskIdParams(task_id=UNKNOWN)),
                            CancelTaskRequest(params=TaskIdParams(task_id=UNKNOWN)),
                            UpdateTaskRequest(params=UpdateTaskParams(task_id=UNKNOWN, input_responses={})),
                            GetTaskRequest(params=TaskIdParams(task_id="../../etc/passwd"))):
                with pytest.raises(MCPError) as err:
                    await client.session.send_request(request, EmptyResult)
                errors.append(err.value)
            created = await _task_call(client, "generate_scene", _scene("t5", 1))
            ack = await client.session.send_request(UpdateTaskRequest(params=UpdateTaskParams(
                task_id=created.task_id, input_responses={"nothing": {"action": "accept"}})), EmptyResult)
            await _until_terminal(client, created.task_id, [])
        return errors, ack

    errors, ack = anyio.run(main)
    assert [e.error.code for e in errors] == [-32602] * 4
    assert all(e.error.message.startswith(("Failed to retrieve task: ", "Failed to cancel task: ")) for e in errors)
    assert UNKNOWN in errors[0].error.message and "/etc/passwd" not in errors[3].error.message.split("'")[0]
    assert ack.result_type == "complete"  # tasks/update: no input is ever outstanding, so it is acknowledged


def test_tasks_sdk_client_resolves_a_task_transparently(server: YtapServer) -> None:
    async def main() -> Any:
        async with _tasks_client(server) as client:
            return await client.call_tool("make_thumbnail", {"video_id": "t6", "title": "Tasks work"})

    result = anyio.run(main)
    assert not result.is_error and result.structured_content["status"] == "succeeded"
    thumb = result.structured_content["result"]
    info = probe(thumb["path"])
    assert info.video and (info.video.width, info.video.height) == (1280, 720)


# --- streamable HTTP ------------------------------------------------------------------------------


def test_tasks_over_streamable_http_sdk_client(tmp_path: Path) -> None:
    with _server(tmp_path, "streamable-http") as url:

        async def main() -> tuple[GetTaskResult, GetTaskResult, dict[str, Any], dict[str, Any]]:
            async with _tasks_client(url + "/mcp") as client:
                quick = await _task_call(client, "generate_scene", _scene("h1", 1))
                slow = await _task_call(client, "generate_scene", _scene("h1", 2, duration_s=60))
                await _cancel(client, slow.task_id)
                done = await _until_terminal(client, quick.task_id, [])
                cancelled = await _until_terminal(client, slow.task_id, [])
            async with Client(url + "/mcp", mode=MODERN) as other:  # another connection, no extension
                return done, cancelled, await _job_status(other, quick.task_id), await _job_status(other, slow.task_id)

        done, cancelled, quick_job, slow_job = anyio.run(main)
    assert done.status == "completed" and done.result["structuredContent"] == quick_job
    assert quick_job["status"] == "succeeded" and quick_job["result"]["provider"] == "local:placeholder"
    assert cancelled.status == "cancelled" and slow_job["status"] == "cancelled"


class _Wire:
    """Raw JSON-RPC over streamable HTTP, each exchange kept for the transcript."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lines: list[str] = []
        self._id = 0

    def send(self, method: str, params: dict[str, Any], *, name: str | None = None, declare: bool = True
             ) -> dict[str, Any]:
        self._id += 1
        caps = {"extensions": {TASKS_EXTENSION: {}}} if declare else {}
        body = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": {**params, "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": caps}}}
        headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": MODERN,
                   "mcp-method": method, **({"mcp-name": name} if name else {})}
        response = httpx.post(self.url, json=body, headers=headers, timeout=30)
        reply = _json_rpc_reply(response)
        shown = {k: v for k, v in body["params"].items() if k != "_meta"}
        self.lines.append(f"-> {method} {json.dumps(shown)}" + ("" if declare else "  (extension not declared)"))
        self.lines.append(f"<- {json.dumps(_brief(reply))}")
        return reply


def _json_rpc_reply(response: httpx.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return response.json()


def _brief(reply: dict[str, Any]) -> dict[str, Any]:
    """The reply for the transcript: the serverInfo stamp dropped, a tool result cut to its kinds and status."""
    if "result" not in reply:
        return {"error": reply["error"]}
    result = dict(reply["result"])
    meta = {k: v for k, v in (result.pop("_meta", None) or {}).items() if not k.startswith("io.modelcontextprotocol/")}
    if meta:
        result["_meta"] = meta
    for holder, key in ((result, "result"), ({"r": result}, "r")):
        inner = holder.get(key)
        if isinstance(inner, dict) and "content" in inner:
            structured = inner.get("structuredContent") or {}
            holder[key] = {"content": [b["type"] for b in inner["content"]], "isError": inner.get("isError", False),
                           "structuredContent": {k: structured.get(k) for k in ("job_id", "status", "message")}
                           | ({"result.uri": structured["result"]["uri"]} if structured.get("result") else {})}
            if key == "r":
                result = holder["r"]
    return {"result": result}


def test_tasks_raw_json_rpc_over_streamable_http_transcript(tmp_path: Path) -> None:
    """The wire itself (what the SDK client hides): the round trip the lead's closing note shows."""
    with _server(tmp_path, "streamable-http") as url:
        wire = _Wire(url + "/mcp")
        created = wire.send("tools/call", {"name": "generate_scene", "arguments": _scene("w1", 1, duration_s=2)},
                            name="generate_scene")["result"]
        task_id = created["taskId"]
        polls: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            polls.append(wire.send("tasks/get", {"taskId": task_id}, name=task_id)["result"])
            if polls[-1]["status"] != "working":
                break
            time.sleep(0.4)
        job = wire.send("tools/call", {"name": "job_status", "arguments": {"job_id": task_id}},
                        name="job_status")["result"]["structuredContent"]
        other = wire.send("tools/call", {"name": "generate_scene", "arguments": _scene("w1", 2, duration_s=60)},
                          name="generate_scene")["result"]
        ack = wire.send("tasks/cancel", {"taskId": other["taskId"]}, name=other["taskId"])["result"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ended = wire.send("tasks/get", {"taskId": other["taskId"]}, name=other["taskId"])["result"]
            if ended["status"] != "working":
                break
            time.sleep(0.4)
        other_job = wire.send("tools/call", {"name": "job_status", "arguments": {"job_id": other["taskId"]}},
                              name="job_status")["result"]["structuredContent"]
        unknown = wire.send("tasks/get", {"taskId": UNKNOWN}, name=UNKNOWN)
        undeclared = wire.send("tools/call", {"name": "generate_scene", "arguments": {**_scene("w1", 3),
                               "wait_seconds": 0}}, name="generate_scene", declare=False)["result"]
    print("\n" + "\n".join(wire.lines))
    assert created["resultType"] == "task" and created["status"] == "working"
    assert "ttlMs" in created and created["ttlMs"] is None and created["pollIntervalMs"] == 2000
    assert polls[-1]["resultType"] == "complete" and polls[-1]["status"] == "completed"
    assert polls[-1]["result"]["structuredContent"] == job and job["status"] == "succeeded"
    assert ack == {"resultType": "complete", "_meta": ack["_meta"]}
    assert ended["status"] == "cancelled" and other_job["status"] == "cancelled"
    assert unknown["error"]["code"] == -32602
    assert "resultType" not in undeclared or undeclared["resultType"] == "complete"
    assert undeclared["structuredContent"]["status"] in ("queued", "running")
