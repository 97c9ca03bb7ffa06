"""How a tool declares its arguments: a closed pydantic model of its own parameters, extended
with the fields of its operation's options class (`providers/options.py`), so every option is
declared once and every input schema says `additionalProperties: false`.

An argument the schema does not name is refused before the tool runs, naming the closest
valid parameter; nothing is sent to a provider and nothing is stored.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.context import LifespanContextT, RequestT
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata, func_metadata
from mcp.types import ToolAnnotations
from pydantic import ConfigDict, Field, create_model

from mcp_imagegen.providers.options import option_fields

ImageArg = Annotated[
    str,
    Field(
        description="The image: an imagegen://images/{id} URI, an absolute file path in an allowed folder, "
        "an http(s) URL if the server allows them, a data URI, or base64."
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
ModelArg = Annotated[
    str | None, Field(description="Model (on Azure: deployment) name. Default: the provider's.")
]
NArg = Annotated[int, Field(description="How many images to make.", ge=1, le=10)]
KeepPartialsArg = Annotated[
    bool, Field(description="Keep the intermediate images in the store after the final image lands.")
]
WaitArg = Annotated[
    float | None,
    Field(
        description="Seconds to wait for the result before answering with a job_id to collect it later "
        "with get_job (default 45, IMAGEGEN_WAIT_SECONDS; 0 answers with the job_id at once). Keep it "
        "under the host's tool-call timeout (often 60 s).",
        ge=0,
        le=3600,
    ),
]
JobIdArg = Annotated[
    str,
    Field(description="The job_id from a result whose status was 'running'.", min_length=1, max_length=100),
]


class ToolArguments(ArgModelBase):
    """A tool's own parameters; subclasses declare them as fields. Closed to unknown names."""

    model_config = ConfigDict(extra="forbid")


class _ArgumentsMetadata(FuncMetadata):
    """Hands the tool function its validated arguments model whole, as `call`, instead of
    spreading its fields into keyword arguments."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        return {"call": self.arg_model.model_validate(self.pre_parse_json(arguments_to_validate))}


class StrictTool(Tool):
    """A tool that refuses an argument its schema does not name, with the closest valid name."""

    async def run(
        self,
        arguments: dict[str, Any],
        context: Context[LifespanContextT, RequestT],
        convert_result: bool = False,
    ) -> Any:
        known = [field.alias or name for name, field in self.fn_metadata.arg_model.model_fields.items()]
        unknown = [name for name in arguments if name not in known]
        if unknown:
            raise ToolError(f"Error executing tool {self.name}: {unknown_parameters(unknown, known)}")
        return await super().run(arguments, context, convert_result)


def unknown_parameters(unknown: list[str], known: list[str]) -> str:
    """ "unknown parameter 'qualty'; did you mean 'quality'?" for each unknown name."""
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif known:
            hint = f"valid parameters: {', '.join(sorted(known))}."
        else:
            hint = "this tool takes no parameters."
        parts.append(f"unknown parameter {name!r}; {hint}")
    return " ".join(parts) + " Nothing was sent to a provider."


def arguments_model(name: str, own: type[ToolArguments], options: type[Any] | None) -> type[ToolArguments]:
    """`own` extended with the fields of the options class: the tool's whole argument model."""
    if options is None:
        return own
    fields: dict[str, Any] = {
        field: (annotated, default) for field, annotated, default in option_fields(options)
    }
    return create_model(f"{name}Arguments", __base__=own, **fields)


def strict_tool(
    fn: Callable[..., Any],
    own: type[ToolArguments],
    options: type[Any] | None,
    annotations: ToolAnnotations,
) -> StrictTool:
    """The tool for `fn(call, ctx)`: its input schema from `own` + `options`, its output schema
    and result conversion from `fn`'s return annotation, its title from the annotations."""
    model = arguments_model(fn.__name__, own, options)
    derived = func_metadata(fn, skip_names=["call", "ctx"])
    metadata = _ArgumentsMetadata(
        arg_model=model,
        output_schema=derived.output_schema,
        output_model=derived.output_model,
        wrap_output=derived.wrap_output,
    )
    return StrictTool(
        fn=fn,
        name=fn.__name__,
        title=annotations.title,
        description=fn.__doc__ or "",
        parameters=model.model_json_schema(by_alias=True),
        fn_metadata=metadata,
        is_async=True,
        context_kwarg="ctx",
        annotations=annotations,
    )


def tool_annotations(
    title: str,
    *,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = True,
) -> ToolAnnotations:
    """Tool hints for hosts; by default a tool that makes something new by calling a provider."""
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )
