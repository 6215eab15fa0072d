"""The MCP tasks extension (``io.modelcontextprotocol/tasks``, ext-tasks spec 2026-07-28, SEP-2663) over ytap's jobs.

A client that declares the extension in a 2026-07-28 request's capabilities gets a job-starting
tool call (generate_scene, synthesize_narration, make_thumbnail, assemble_video, every tool that
returns a job envelope) answered with a task (``resultType: "task"``) instead of the envelope,
then follows it with ``tasks/get`` and stops it with ``tasks/cancel``. The task IS the job: the
task id is the job id (80 random bits), so ``job_status`` and ``tasks/get`` read the same record
and always agree, from any session or connection. Clients that do not declare the extension,
and every 2025-era (initialize handshake) connection, see no change.

Status mapping (the spec's rules, not a guess):
- queued, running -> ``working``; ``statusMessage`` carries the progress and message, and
  ``_meta["ytap/progress"]`` the fraction (the spec's Task has no progress field and forbids
  progress notifications for tasks);
- succeeded -> ``completed``, ``result`` = the CallToolResult the tool returns for that envelope
  (structured content, resource links, preview);
- failed -> ``completed`` with an ``isError: true`` result, because the same call made without the
  extension ends in a tool error, not a JSON-RPC error, and the spec reserves ``failed`` for
  JSON-RPC errors ("tasks/get returns exactly what the underlying request would have returned");
- cancelled -> ``cancelled``.
Our tasks never need input, so ``tasks/update`` only checks the task exists and acknowledges.

The wire shapes below are the extension's: mcp 2.3 ships only the 2025-11-25 core task types
(``ttl``/``pollInterval``, ``CreateTaskResult{task}``), which are not this wire, so minimal models
are defined here. The client side (``TasksClientExtension``) lets the SDK's ``Client`` declare the
extension, parse a task result and resolve it by polling.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

import anyio
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.server import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolRequestParams, CallToolResult, Request, RequestParams, Result
from mcp_types import TextContent
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from core.assets.job_store import JobRow
from core.errors import YtapError
from core.runtime import Runtime
from core.schemas import JobEnvelope
from ytap_mcp.tool_schemas import structured
from tools import ToolInfo

__all__ = [
    "TASKS_EXTENSION",
    "TasksExtension",
    "TasksClientExtension",
    "Task",
    "CreateTaskResult",
    "GetTaskResult",
    "GetTaskRequest",
    "UpdateTaskRequest",
    "CancelTaskRequest",
    "TaskIdParams",
    "UpdateTaskParams",
    "job_tool_names",
]

log = logging.getLogger("ytap_mcp.tasks")

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
POLL_INTERVAL_MS = 2000  # jobs run for seconds to minutes; their progress is persisted about once a second
PROGRESS_META_KEY = "ytap/progress"
_MODERN = frozenset(MODERN_PROTOCOL_VERSIONS)
_STATUS = {"queued": "working", "running": "working", "succeeded": "completed", "failed": "completed",
           "cancelled": "cancelled"}

TaskStatus = Literal["working", "input_required", "completed", "cancelled", "failed"]


# --- wire shapes (ext-tasks 2026-07-28 schema) ----------------------------------------------


class Task(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)  # as mcp_types' models

    task_id: str
    status: TaskStatus
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None = None  # required on the wire, null = unlimited: dumped explicitly (see _wire)
    poll_interval_ms: int | None = None


class CreateTaskResult(Result, Task):
    """A tools/call answered with a task (``resultType: "task"``)."""

    result_type: Literal["task"] = "task"


class GetTaskResult(Result, Task):
    """tasks/get: the task with its status's payload (a DetailedTask)."""

    result_type: Literal["complete"] = "complete"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None


class TaskIdParams(RequestParams):
    task_id: str


class UpdateTaskParams(TaskIdParams):
    input_responses: dict[str, Any] = {}


class GetTaskRequest(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"  # the spec's Mcp-Name routing header on streamable HTTP


class UpdateTaskRequest(Request[UpdateTaskParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: UpdateTaskParams
    name_param = "taskId"


class CancelTaskRequest(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


def _wire(model: BaseModel) -> dict[str, Any]:
    """The result as sent: without unset optionals, but with ``ttlMs`` (required, null = unlimited)."""
    data = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    data.setdefault("ttlMs", None)
    return data


# --- server side ------------------------------------------------------------------------------


def job_tool_names(infos: Iterable[ToolInfo]) -> frozenset[str]:
    """The tools that start a job: they return a job envelope and do not take a job id (job_status, cancel_job)."""
    names = set()
    for info in infos:
        hints = typing.get_type_hints(info.fn)
        returns = typing.get_origin(hints.get("return")) or hints.get("return")
        is_envelope = isinstance(returns, type) and issubclass(returns, JobEnvelope)
        if is_envelope and "job_id" not in inspect.signature(info.fn).parameters:
            names.add(info.name)
    return frozenset(names)


ToolResultFn = Callable[[JobEnvelope[Any]], Awaitable[CallToolResult]]


class TasksExtension(Extension):
    """Job-starting tool calls answered as tasks for clients that declare the extension; tasks/* over rt.jobs."""

    identifier = TASKS_EXTENSION

    def __init__(self, runtime: Runtime, infos: Iterable[ToolInfo], tool_result: ToolResultFn) -> None:
        """``tool_result(envelope)``: what the tool returns for a finished envelope."""
        infos = tuple(infos)
        self.runtime = runtime
        self.job_tools = job_tool_names(infos)
        self._waits = {i.name for i in infos if "wait_seconds" in inspect.signature(i.fn).parameters}
        self._tool_result = tool_result

    def methods(self) -> Sequence[MethodBinding]:
        return (
            MethodBinding("tasks/get", TaskIdParams, self._get, protocol_versions=_MODERN),
            MethodBinding("tasks/update", UpdateTaskParams, self._update, protocol_versions=_MODERN),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel, protocol_versions=_MODERN),
        )

    @staticmethod
    def declared(ctx: ServerRequestContext[Any, Any]) -> bool:
        """This request's client declared the extension on a wire that can carry a task result."""
        if ctx.protocol_version not in _MODERN:
            return False
        caps = ctx.session.client_capabilities
        return bool(caps and caps.extensions and TASKS_EXTENSION in caps.extensions)

    async def intercept_tool_call(self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any],
                                  call_next: CallNext) -> HandlerResult:
        if params.name not in self.job_tools or not self.declared(ctx):
            return await call_next(ctx)
        if params.name in self._waits:
            # Start the job and answer at once: the task replaces waiting. The handler runs with
            # these very params (an interceptor cannot pass new ones), so the wait is set in place.
            params.arguments = {**(params.arguments or {}), "wait_seconds": 0}
        result = await call_next(ctx)
        envelope = result.structured_content if isinstance(result, CallToolResult) and not result.is_error else None
        if not isinstance(envelope, dict) or envelope.get("status") not in ("queued", "running"):
            return result  # already ended (a cached asset) or refused: the ordinary result is the answer
        task = self._task(*self._lookup(envelope["job_id"]))
        return _wire(CreateTaskResult.model_validate(task.model_dump(exclude={"result_type", "result", "error"})))

    # --- tasks/* ------------------------------------------------------------------------------

    def _lookup(self, task_id: str) -> tuple[JobEnvelope[Any], JobRow]:
        try:
            envelope = self.runtime.jobs.envelope(task_id)
            row = self.runtime.jobs.store.get(task_id)
        except YtapError as exc:
            raise MCPError(code=INVALID_PARAMS, message=f"Failed to retrieve task: {exc.message}") from None
        return envelope, row

    @staticmethod
    def _task(env: JobEnvelope[Any], row: JobRow) -> GetTaskResult:
        """The job as a task (without its result): the same record job_status reads."""
        status = _STATUS[env.status]
        if env.status in ("queued", "running"):
            message = f"{env.status}, {env.progress:.0%}: {env.message}"
        elif env.status == "failed" and env.error is not None:
            message = f"failed [{env.error.code}]: {env.error.message}"
        else:
            message = env.message
        return GetTaskResult(
            task_id=env.job_id,
            status=status,  # type: ignore[arg-type]
            status_message=message[:1000],
            created_at=row.created_at,
            last_updated_at=row.updated_at,
            ttl_ms=None,  # jobs are kept for good (the registry never drops them)
            poll_interval_ms=POLL_INTERVAL_MS if status == "working" else None,
            _meta={PROGRESS_META_KEY: env.progress, "ytap/job_status": env.status},
        )

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        require_client_extension(ctx, TASKS_EXTENSION)
        envelope, row = self._lookup(params.task_id)
        task = self._task(envelope, row)
        if envelope.status == "succeeded":
            task.result = await self._call_tool_result(envelope)
        elif envelope.status == "failed":
            task.result = _wire_result(_failed_result(envelope))
        return _wire(task)

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> HandlerResult:
        # No ytap task ever asks for input: every response is for a key that is not outstanding, so
        # it is ignored, as the spec says; an unknown task is still an error.
        require_client_extension(ctx, TASKS_EXTENSION)
        self._lookup(params.task_id)
        return {}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        require_client_extension(ctx, TASKS_EXTENSION)
        self._lookup(params.task_id)
        try:
            self.runtime.jobs.cancel(params.task_id)
        except YtapError as exc:  # a job another ytap-mcp process runs: it must be cancelled there
            raise MCPError(code=INVALID_PARAMS, message=f"Failed to cancel task: {exc.message}") from None
        return {}

    async def _call_tool_result(self, envelope: JobEnvelope[Any]) -> dict[str, Any]:
        return _wire_result(await self._tool_result(envelope))


def _failed_result(envelope: JobEnvelope[Any]) -> CallToolResult:
    """A failed job as its tool reports it: a tool error naming the job, the code and every attempt."""
    err = envelope.error
    text = f"{envelope.kind} job {envelope.job_id} failed"
    if err is not None:
        text += f" [{err.code}]: {err.message}"
        tried = "; ".join(f"{a.provider}: {a.outcome}{' (' + a.reason + ')' if a.reason else ''}" for a in err.attempts)
        text += f" — attempts: {tried}" if tried else ""
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured(envelope),
                          is_error=True)


def _wire_result(result: CallToolResult) -> dict[str, Any]:
    data = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    data.pop("resultType", None)  # the inner result is a payload, not a response
    return data


# --- client side ------------------------------------------------------------------------------


TERMINAL = ("completed", "failed", "cancelled")


class TaskCancelled(RuntimeError):
    """The task ended cancelled: there is no result."""


class TasksClientExtension(ClientExtension):
    """Declares the extension for the SDK's ``Client`` and resolves a task result by polling ``tasks/get``.

    ``Client(server, mode="2026-07-28", extensions=[TasksClientExtension()]).call_tool(...)`` returns
    the final CallToolResult; ``client.session.call_tool(..., allow_claimed=True)`` returns the
    ``CreateTaskResult`` itself, to drive tasks/get and tasks/cancel by hand.
    """

    identifier = TASKS_EXTENSION

    def __init__(self, max_poll_s: float | None = None) -> None:
        self.max_poll_s = max_poll_s  # None: honour the server's pollIntervalMs

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return (ResultClaim(result_type="task", model=CreateTaskResult, resolve=self._resolve),)

    async def _resolve(self, created: CreateTaskResult, ctx: ClaimContext) -> CallToolResult:
        task_id = created.task_id
        while True:
            task = await ctx.session.send_request(GetTaskRequest(params=TaskIdParams(task_id=task_id)), GetTaskResult)
            if task.status == "completed":
                return CallToolResult.model_validate(task.result or {})
            if task.status == "failed":
                raise MCPError(code=int((task.error or {}).get("code", -32603)),
                               message=str((task.error or {}).get("message", task.status_message)))
            if task.status == "cancelled":
                raise TaskCancelled(f"task {task_id} was cancelled: {task.status_message}")
            interval = (task.poll_interval_ms or POLL_INTERVAL_MS) / 1000
            await anyio.sleep(min(interval, self.max_poll_s) if self.max_poll_s is not None else interval)
