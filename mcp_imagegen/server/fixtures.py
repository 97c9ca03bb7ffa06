"""The official conformance suite's fixture tools and resources, served only with
`--conformance-fixtures` so that its scenarios that call them (content types, progress, missing
capabilities, the tasks extension) run against this server's real transports, jobs and tasks.
Never part of a product configuration: the flag is for CI and for people checking conformance.

The long fixtures (`slow_compute`, `failing_job`, `protocol_error_job`) run as jobs, so a client
that declares the tasks extension gets them as tasks exactly like the image tools.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.prompts.base import Message, Prompt, UserMessage
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CallToolResult,
    CreateMessageRequest,
    ElicitRequest,
    ElicitResult,
    ImageContent,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    TextContent,
)
from mcp_types.jsonrpc import MISSING_REQUIRED_CLIENT_CAPABILITY
from pydantic import Field

from mcp_imagegen.errors import ImagegenError
from mcp_imagegen.server.jobs.core import Job
from mcp_imagegen.server.jobs.delivery import run_as_job
from mcp_imagegen.server.jobs.tasks import EXTENSION_ID as TASKS_EXTENSION
from mcp_imagegen.server.jobs.tasks import task_request
from mcp_imagegen.server.state import AppState

TASK_TOOLS = frozenset({"slow_compute", "failing_job", "protocol_error_job"})
"""The fixtures the suite expects to become tasks."""
FIXTURE = "conformance-fixture"


@dataclass(frozen=True)
class TextOutcome:
    text: str

    async def result(self) -> CallToolResult:
        return CallToolResult(content=[TextContent(text=self.text)])


def _png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def test_simple_text() -> str:
    """Tests simple text content response"""
    return "This is a simple text response for testing."


async def test_image_content() -> CallToolResult:
    """Tests image content response"""
    return CallToolResult(content=[ImageContent(data=_png(), mime_type="image/png")])


async def test_tool_with_progress(ctx: Context[AppState, Any]) -> str:
    """Tests tool that reports progress notifications"""
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"Completed step {step} of 100")
        await anyio.sleep(0.05)
    meta = ctx.request_context.meta or {}
    return str(meta.get("progress_token", meta.get("progressToken", 0)))


async def test_error_handling() -> str:
    """Tests error response handling"""
    from mcp.server.mcpserver.exceptions import ToolError

    raise ToolError("This tool intentionally returns an error for testing")


async def test_missing_capability(ctx: Context[AppState, Any]) -> str:
    """Needs the client's sampling capability; without it, error -32021."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.sampling is None:
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message="MissingRequiredClientCapabilityError",
            data={"requiredCapabilities": {"sampling": {}}},
        )
    return "Success"


async def greet(name: Annotated[str, Field(description="Who to greet.")]) -> str:
    """Greets by name (sync-only)."""
    return f"Hello, {name}!"


async def slow_compute(
    ctx: Context[AppState, Any],
    seconds: Annotated[float, Field(ge=0, le=600)] = 1,
    label: str = "",
) -> CallToolResult:
    """Sleeps `seconds`, then answers (task-supporting)."""

    async def work(job: Job) -> TextOutcome:
        await anyio.sleep(seconds)
        return TextOutcome(f"computed {label or 'result'} after {seconds:g} s")

    return await run_as_job(ctx, "slow_compute", FIXTURE, FIXTURE, work, "computing", None)


async def failing_job(ctx: Context[AppState, Any]) -> CallToolResult:
    """Fails with a tool error after about a second (task-required: -32021 for a client without
    the tasks extension)."""
    if task_request() is None:
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message="failing_job runs only as a task",
            data={"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
        )

    async def work(job: Job) -> TextOutcome:
        await anyio.sleep(1)
        raise ImagegenError("failing_job failed, as it always does")

    return await run_as_job(ctx, "failing_job", FIXTURE, FIXTURE, work, "about to fail", None)


async def protocol_error_job(ctx: Context[AppState, Any]) -> CallToolResult:
    """Crashes with an internal error (task-supporting): a protocol-level failure."""

    async def work(job: Job) -> TextOutcome:
        await anyio.sleep(0.2)
        raise RuntimeError("protocol_error_job crashed, as it always does")

    return await run_as_job(ctx, "protocol_error_job", FIXTURE, FIXTURE, work, "about to crash", None)


# ----- SEP-2322 input-required (MRTR) fixtures: the client answers and retries the call -----


def _elicit(message: str, field: str, kind: str = "string") -> ElicitRequest:
    schema = {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}
    return ElicitRequest.model_validate(
        {"method": "elicitation/create", "params": {"message": message, "requestedSchema": schema}}
    )


def _sample(text: str, max_tokens: int) -> CreateMessageRequest:
    return CreateMessageRequest.model_validate(
        {
            "method": "sampling/createMessage",
            "params": {
                "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
                "maxTokens": max_tokens,
            },
        }
    )


ROOTS = ListRootsRequest(method="roots/list", params=None)


def _answer(ctx: Context[AppState, Any], key: str) -> Any:
    """The client's answer under `key`, or None when it is missing."""
    return (ctx.input_responses or {}).get(key)


def _elicited(ctx: Context[AppState, Any], key: str, field: str) -> Any:
    answer = _answer(ctx, key)
    if isinstance(answer, ElicitResult) and answer.action == "accept" and answer.content:
        return answer.content.get(field)
    return None


def _sampled(ctx: Context[AppState, Any], key: str) -> str | None:
    answer = _answer(ctx, key)
    content = getattr(answer, "content", None)
    return content.text if isinstance(content, TextContent) else None


def _roots(ctx: Context[AppState, Any], key: str) -> list[str] | None:
    answer = _answer(ctx, key)
    return [str(root.uri) for root in answer.roots] if isinstance(answer, ListRootsResult) else None


async def test_input_required_result_elicitation(
    ctx: Context[AppState, Any],
) -> CallToolResult | InputRequiredResult:
    """Asks the user's name, then greets them."""
    name = _elicited(ctx, "user_name", "name")
    if name is None:
        return InputRequiredResult(input_requests={"user_name": _elicit("What is your name?", "name")})
    return CallToolResult(content=[TextContent(text=f"Hello, {name}!")])


async def test_input_required_result_sampling(
    ctx: Context[AppState, Any],
) -> CallToolResult | InputRequiredResult:
    """Asks the client's model a question, then answers with its reply."""
    reply = _sampled(ctx, "capital_question")
    if reply is None:
        return InputRequiredResult(
            input_requests={"capital_question": _sample("What is the capital of France?", 100)}
        )
    return CallToolResult(content=[TextContent(text=reply)])


async def test_input_required_result_list_roots(
    ctx: Context[AppState, Any],
) -> CallToolResult | InputRequiredResult:
    """Asks for the client's roots, then lists them."""
    roots = _roots(ctx, "client_roots")
    if roots is None:
        return InputRequiredResult(input_requests={"client_roots": ROOTS})
    return CallToolResult(content=[TextContent(text=f"Roots: {', '.join(roots) or 'none'}")])


async def test_input_required_result_request_state(
    ctx: Context[AppState, Any],
) -> CallToolResult | InputRequiredResult:
    """Asks for a confirmation with request state, and checks the state comes back."""
    if ctx.request_state == "awaiting-confirm" and _elicited(ctx, "confirm", "ok") is not None:
        return CallToolResult(content=[TextContent(text="state-ok: confirmed")])
    return InputRequiredResult(
        input_requests={"confirm": _elicit("Please confirm", "ok", "boolean")},
        request_state="awaiting-confirm",
    )


async def test_input_required_result_multiple_inputs(
    ctx: Context[AppState, Any],
) -> CallToolResult | InputRequiredResult:
    """Asks for a name, a sampled greeting and the roots at once."""
    name, greeting, roots = (
        _elicited(ctx, "user_name", "name"),
        _sampled(ctx, "greeting"),
        _roots(ctx, "client_roots"),
    )
    if ctx.request_state == "multiple" and name is not None and greeting is not None and roots is not None:
        return CallToolResult(
            content=[TextContent(text=f"Name: {name}; Greeting: {greeting}; Roots: {len(roots)}")]
        )
    return InputRequiredResult(
        input_requests={
            "user_name": _elicit("What is your name?", "name"),
            "greeting": _sample("Generate a greeting", 50),
            "client_roots": ROOTS,
        },
        request_state="multiple",
    )


async def test_input_required_result_multi_round(
    ctx: Context[AppState, Any],
) -> CallToolResult | InputRequiredResult:
    """Two rounds: a name, then a colour, the state carrying the name."""
    state = ctx.request_state or ""
    name = _elicited(ctx, "step1", "name")
    if state == "round-1" and name is not None:
        return InputRequiredResult(
            input_requests={"step2": _elicit("Step 2: What is your favorite color?", "color")},
            request_state=f"round-2:{name}",
        )
    color = _elicited(ctx, "step2", "color")
    if state.startswith("round-2:") and color is not None:
        return CallToolResult(content=[TextContent(text=f"{state.removeprefix('round-2:')} likes {color}")])
    return InputRequiredResult(
        input_requests={"step1": _elicit("Step 1: What is your name?", "name")}, request_state="round-1"
    )


async def test_input_required_result_tampered_state(
    ctx: Context[AppState, Any],
) -> CallToolResult | InputRequiredResult:
    """Request state is sealed by the SDK; a tampered one never reaches this body."""
    if ctx.request_state == "integrity" and _elicited(ctx, "confirm", "ok") is not None:
        return CallToolResult(content=[TextContent(text="state intact")])
    return InputRequiredResult(
        input_requests={"confirm": _elicit("Please confirm", "ok", "boolean")}, request_state="integrity"
    )


async def test_input_required_result_capabilities(
    ctx: Context[AppState, Any],
) -> CallToolResult | InputRequiredResult:
    """Asks only for what the client declared it can answer."""
    capabilities = ctx.client_capabilities
    wanted: dict[str, InputRequest] = {}
    if capabilities is not None and capabilities.sampling is not None and _sampled(ctx, "question") is None:
        wanted["question"] = _sample("What is 2 + 2?", 10)
    if (
        capabilities is not None
        and capabilities.elicitation is not None
        and _elicited(ctx, "name", "name") is None
    ):
        wanted["name"] = _elicit("What is your name?", "name")
    if wanted:
        return InputRequiredResult(input_requests=wanted)
    return CallToolResult(content=[TextContent(text="done with the declared capabilities")])


async def test_input_required_result_prompt(
    ctx: Context[AppState, Any],
) -> list[Message] | InputRequiredResult:
    """A prompt that needs context from the user first."""
    context = _elicited(ctx, "user_context", "context")
    if context is None:
        return InputRequiredResult(
            input_requests={"user_context": _elicit("What context should the prompt use?", "context")}
        )
    return [UserMessage(f"Use this context: {context}")]


def register_fixtures(server: MCPServer[AppState]) -> None:
    for tool in (
        test_simple_text,
        test_image_content,
        test_tool_with_progress,
        test_error_handling,
        test_missing_capability,
        greet,
        slow_compute,
        failing_job,
        protocol_error_job,
        test_input_required_result_elicitation,
        test_input_required_result_sampling,
        test_input_required_result_list_roots,
        test_input_required_result_request_state,
        test_input_required_result_multiple_inputs,
        test_input_required_result_multi_round,
        test_input_required_result_tampered_state,
        test_input_required_result_capabilities,
    ):
        server.add_tool(tool, structured_output=False)
    server.add_prompt(Prompt.from_function(test_input_required_result_prompt))
    server.add_resource(_static_text())
    server.add_resource(_static_binary())


def _static_text() -> Any:
    from mcp.server.mcpserver.resources import TextResource

    return TextResource(
        uri="test://static-text",
        name="Static Text Resource",
        mime_type="text/plain",
        text="This is the content of the static text resource.",
    )


def _static_binary() -> Any:
    from mcp.server.mcpserver.resources import BinaryResource

    return BinaryResource(
        uri="test://static-binary",
        name="Static Binary Resource",
        mime_type="image/png",
        data=base64.b64decode(_png()),
    )
