"""How a tool declares its arguments: a closed pydantic model of its own parameters, extended
with the fields of its operation's options class (`providers/options.py`), so every option is
declared once and every input schema says `additionalProperties: false`.

An argument the schema does not name is refused before the tool runs, naming the closest
valid parameter; nothing is sent to a provider and nothing is stored.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.context import LifespanContextT, RequestT
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import build_resolver_plans, find_resolved_parameters
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata, func_metadata
from mcp.types import ToolAnnotations
from pydantic import ConfigDict, Field, ValidationError, create_model

from mcp_imagegen.errors import ImagegenError
from mcp_imagegen.operations import Operation, OperationSpec
from mcp_imagegen.providers.options import option_fields
from mcp_imagegen.server import icons
from mcp_imagegen.server.tools.schemas import compact, outline
from mcp_imagegen.server.tools.surface import Surface

ImageArg = Annotated[
    str,
    Field(
        description="An imagegen:// URI, an allowed absolute path, a URL (if allowed), a data URI or base64."
    ),
]
PromptArg = Annotated[
    str, Field(description="What to draw (or, for edits, what to change).", min_length=1, max_length=32000)
]
ProviderArg = Annotated[
    str | None,
    Field(
        description="Provider name, e.g. 'openai', 'azure', 'placeholder'. Default: the server's default. "
        "See list_providers."
    ),
]
ModelArg = Annotated[str | None, Field(description="Default: the provider's (list_providers).")]
NArg = Annotated[int, Field(description="How many images to make.", ge=1, le=10)]
KeepPartialsArg = Annotated[bool, Field(description="Keep the partial images once the final one lands.")]
WaitArg = Annotated[
    float | None,
    Field(
        description="Seconds to wait before answering with a job_id for get_job (default 45).",
        ge=0,
        le=3600,
    ),
]
JobIdArg = Annotated[
    str,
    Field(description="From a result with status 'running'.", min_length=1, max_length=100),
]


MAX_ARGUMENTS = 64
"""More argument names than any tool has (the widest takes about 30): a call with more is refused
before any name is looked at."""
MAX_ARGUMENT_VALUES = 10_000
"""List items and object members, at any depth, in one call: far above a valid call (16 images,
50 points, a response schema), far below what would take the server long to walk."""
MAX_NAMES_EXPLAINED = 3
"""Unknown names matched against the valid ones and named in the error; the rest are counted."""
MAX_NAME_SHOWN = 64


class ToolArguments(ArgModelBase):
    """A tool's own parameters; subclasses declare them as fields. Closed to unknown names."""

    model_config = ConfigDict(extra="forbid")


class _ArgumentsMetadata(FuncMetadata):
    """Hands the tool function its validated arguments model whole, as `call`, instead of
    spreading its fields into keyword arguments."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        return {"call": self.arg_model.model_validate(self.pre_parse_json(arguments_to_validate))}


class StrictTool(Tool):
    """A tool that refuses an argument its schema does not name, with the closest valid name, and
    a value its schema does not allow, in one line per value."""

    withheld: dict[str, str] = Field(default_factory=dict, exclude=True)
    """Options of the tool's operation left out of this installation's schema, with why."""
    operation: Operation | None = Field(default=None, exclude=True)
    """The provider operation it runs as a job (a long call), if any."""

    async def run(
        self,
        arguments: dict[str, Any],
        context: Context[LifespanContextT, RequestT],
        convert_result: bool = False,
    ) -> Any:
        """Count a provider call against its caller's rate limit first, then refuse arguments
        too many or too large to read, then unknown names, then bad values: each step's work is
        bounded, so a call built to be expensive to refuse costs the server little."""
        if self.operation is not None:
            await _admit(context, self.name)
        refusal = oversized(arguments)
        if refusal is not None:
            raise ToolError(f"Error executing tool {self.name}: {refusal} Nothing was sent to a provider.")
        known = self._known_names()
        unknown = [name for name in arguments if name not in known]
        if unknown:
            raise ToolError(
                f"Error executing tool {self.name}: {self._unknown(unknown)} Nothing was sent to a provider."
            )
        try:
            self.fn_metadata.arg_model.model_validate(self.fn_metadata.pre_parse_json(arguments))
        except ValidationError as exc:
            # From None: the SDK would log every failing field's name from the cause.
            raise ToolError(
                f"Error executing tool {self.name}: {invalid_values(exc)} Nothing was sent."
            ) from None
        return await super().run(arguments, context, convert_result)

    def _known_names(self) -> frozenset[str]:
        fields = self.fn_metadata.arg_model.model_fields
        return frozenset(field.alias or name for name, field in fields.items())

    def _unknown(self, unknown: list[str]) -> str:
        """Why each of the first few unknown names is refused (closest valid name, or why the
        option is not offered here), then how many more there are."""
        known = sorted(self._known_names())
        if len(unknown) == 1:
            return self.withheld.get(unknown[0]) or unknown_parameter(unknown[0], known)
        shown = unknown[:MAX_NAMES_EXPLAINED]
        reasons = [
            self.withheld.get(name) or unknown_parameter(name, known, list_valid=False) for name in shown
        ]
        unmatched = any(
            name not in self.withheld and "did you mean" not in reason
            for name, reason in zip(shown, reasons, strict=True)
        )
        more = len(unknown) - len(shown)
        if more:
            reasons.append(f"And {more:,} more unknown parameter{'s' if more > 1 else ''}.")
        if unmatched:
            reasons.append(f"Valid parameters: {', '.join(known)}." if known else "This tool takes none.")
        return " ".join(reasons)


async def _admit(context: Context[Any, Any], tool: str) -> None:
    """Count the call against its caller's rate limit (`LimitError`, as the tool's error, when over)."""
    from mcp_imagegen.server.principals import current_principal

    state = context.request_context.lifespan_context
    try:
        await state.rate_limiter.admit(current_principal().name)
    except ImagegenError as exc:
        raise ToolError(f"Error executing tool {tool}: {exc}") from None


def oversized(arguments: dict[str, Any]) -> str | None:
    """Why `arguments` are refused unread: more names than any tool takes, or more values (list
    items and object members, at any depth) than any valid call holds. The walk stops at the
    limit, so its cost is bounded whatever was sent."""
    if len(arguments) > MAX_ARGUMENTS:
        return (
            f"{len(arguments):,} arguments is more than any tool takes (at most {MAX_ARGUMENTS}); "
            "check the call."
        )
    seen = 0
    pending: list[Any] = [arguments]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            seen += len(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            seen += len(value)
            pending.extend(value)
        if seen > MAX_ARGUMENT_VALUES:
            return f"the arguments hold more than {MAX_ARGUMENT_VALUES:,} values, more than any valid call."
    return None


def invalid_values(error: ValidationError) -> str:
    """ "quality: Input should be 'low', 'medium', 'high' or 'auto' (got 'max')." for each bad value,
    without pydantic's model name, error codes and links."""
    parts = []
    problems = error.errors(include_url=False)
    for problem in problems[:MAX_NAMES_EXPLAINED]:
        where = ".".join(str(part) for part in problem["loc"]) or "arguments"
        given = repr(problem.get("input"))
        given = given if len(given) <= 60 else given[:57] + "..."
        parts.append(f"{where[:MAX_NAME_SHOWN]}: {problem['msg']} (got {given}).")
    if len(problems) > MAX_NAMES_EXPLAINED:
        parts.append(f"And {len(problems) - MAX_NAMES_EXPLAINED:,} more invalid values.")
    return " ".join(parts)


def unknown_parameter(name: str, known: list[str], *, list_valid: bool = True) -> str:
    """ "unknown parameter 'qualty'; did you mean 'quality'?"; with no close name, the valid ones
    (not without `list_valid`, for a caller that lists them once). A name
    longer than any parameter is shown cut short and not matched."""
    if len(name) > MAX_NAME_SHOWN:
        name = f"{name[:MAX_NAME_SHOWN]}... ({len(name):,} characters)"
        close = []
    else:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif not list_valid:
        return f"unknown parameter {name!r}."
    elif known:
        hint = f"valid parameters: {', '.join(sorted(known))}."
    else:
        hint = "this tool takes no parameters."
    return f"unknown parameter {name!r}; {hint}"


def strict_tool(
    fn: Callable[..., Any],
    own: type[ToolArguments],
    annotations: ToolAnnotations,
    surface: Surface,
    spec: OperationSpec[Any] | None = None,
) -> StrictTool:
    """The tool for `fn(call, ctx)`: its input schema from `own` plus those fields of the options
    of the operation `spec` that `surface` offers, its output schema and result conversion from
    `fn`'s return annotation, its title from the annotations; an operation's tool is named as the
    operation table says."""
    fields: dict[str, Any] = {}
    withheld: dict[str, str] = {}
    operation = spec.name if spec else None
    offer = surface.offer(operation) if operation else None
    for name, annotated, default in option_fields(spec.options) if spec else ():
        if operation is None or surface.keeps(operation, name):
            fields[name] = (annotated, default)
        else:
            withheld[name] = (
                f"unknown parameter {name!r}: none of the providers configured here "
                f"({', '.join(offer.providers if offer else ())}) takes it; list_providers says which do."
            )
    if offer is not None:
        for name, values in offer.values.items():
            if name in fields and values:
                fields[name] = (_with_values(fields[name][0], values), None)
        if "provider" in own.model_fields:
            default = offer.providers[0]
            others = [name for name in offer.providers if name != default]
            described = f"{default} (default){''.join(f', {name}' for name in others)}; see list_providers."
            fields["provider"] = (Annotated[str | None, Field(description=described)], None)
    model = create_model(f"{fn.__name__}Arguments", __base__=own, **fields) if fields else own
    resolved = find_resolved_parameters(fn)  # e.g. the confirmation of a call's cost (`spending`)
    returns = typing.get_type_hints(fn, include_extras=True).get("return", inspect.Signature.empty)
    derived = _output_metadata(returns)
    metadata = _ArgumentsMetadata(
        arg_model=model,
        output_schema=outline(derived.output_schema) if derived.output_schema else None,
        output_model=derived.output_model,
        wrap_output=derived.wrap_output,
    )
    return StrictTool(
        fn=fn,
        name=spec.tool if spec else fn.__name__,
        title=annotations.title,
        # Icons on the image tools only: every tools/list carries them, and the job and listing
        # tools are utilities a host need not picture.
        icons=icons.icon(spec.icon) if spec else None,
        description=fn.__doc__ or "",
        parameters=compact(model.model_json_schema(by_alias=True)),
        fn_metadata=metadata,
        is_async=True,
        context_kwarg="ctx",
        annotations=annotations.model_copy(update={"title": None}),  # the tool's own title says it
        withheld=withheld,
        operation=operation,
        resolved_params=dict(resolved),
        resolver_plans=build_resolver_plans(resolved, {"call"}),
    )


@functools.cache
def _output_metadata(returns: Any) -> FuncMetadata:
    """mcp's output schema, model and wrapping for tools that return `returns`, made once per return
    type: the five image tools share one result type, and each schema costs milliseconds of every
    start. The arguments are ours (`strict_tool`), so the stand-in takes none, and returns what the
    tool does (nothing declared when the tool declares nothing)."""

    def stand_in() -> None: ...

    stand_in.__annotations__ = {} if returns is inspect.Signature.empty else {"return": returns}
    return func_metadata(stand_in)


def _with_values(annotated: Any, values: tuple[str, ...]) -> Any:
    """`Annotated[X | None, Field(...)]` with X narrowed to `Literal[values]`, the Field kept."""
    _, *metadata = typing.get_args(annotated)
    narrowed: Any = Literal.__getitem__(values)
    return Annotated.__class_getitem__((narrowed | None, *metadata))  # type: ignore[attr-defined]


def tool_annotations(
    title: str,
    *,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = True,
) -> ToolAnnotations:
    """Tool hints for hosts; by default a tool that makes something new by calling a provider.
    A hint equal to the protocol's default (not read-only, destructive, not idempotent, open
    world) is left out, since every tools/list carries it."""
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only or None,
        destructive_hint=None if destructive else False,
        idempotent_hint=idempotent or None,
        open_world_hint=None if open_world else False,
    )
