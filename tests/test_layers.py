"""The package's layers, read from its own imports: every `import` and `from ... import` of ours in
every module (inside functions and `TYPE_CHECKING` blocks too), checked against what its layer may
import. An upward import fails here with the module, the line and the rule it breaks, so the
layering the architecture describes stays true as the code grows. Also: the operation table is
the one list of operations."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest

import mcp_imagegen
from mcp_imagegen.operations import OPERATIONS, Operation

PACKAGE = Path(mcp_imagegen.__file__).parent


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, dotted."""
    imported: str
    """The module of ours it imports, dotted."""
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[Import]:
    """Every import of a module of ours in `path`, with relative imports made absolute."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from mcp_imagegen.images import codec` imports the module `mcp_imagegen.images.codec`.
            names = [
                f"{base}.{alias.name}"
                if (PACKAGE.parent / f"{base}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()
                else base
                for alias in node.names
            ]
        else:
            continue
        found += [Import(module, name, node.lineno) for name in names if name.split(".")[0] == "mcp_imagegen"]
    return found


ALL_IMPORTS = [found for path in sorted(PACKAGE.rglob("*.py")) for found in imports_of(path)]


def within(name: str, *prefixes: str) -> bool:
    """Whether the dotted module `name` is one of `prefixes` or inside one of them."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def ours(short: str) -> str:
    return f"mcp_imagegen.{short}"


SEAM_TYPES = (
    ours("operations"),
    ours("providers.base"),
    ours("providers.options"),
    ours("providers.model_data"),
)
"""The operation table, the provider seam's own types and the model data: the vocabulary every
layer speaks."""
LEAVES = (ours("errors"), *SEAM_TYPES)


@dataclass(frozen=True)
class Rule:
    """Modules under `modules` may import, of ours, only what is under `may` (and themselves)."""

    name: str
    modules: tuple[str, ...]
    may: tuple[str, ...]

    def broken_by(self, found: Import) -> bool:
        if not within(found.module, *self.modules) or within(found.imported, *self.modules):
            return False
        if found.imported == "mcp_imagegen":  # the package itself: its version
            return False
        return not within(found.imported, *self.may)


RULES = (
    Rule("errors import nothing of ours", (ours("errors"),), ()),
    Rule("options are plain declarations", (ours("providers.options"),), ()),
    Rule(
        "the seam's types import only each other",
        (ours("providers.base"), ours("operations"), ours("providers.model_data")),
        SEAM_TYPES,
    ),
    Rule("images/ is pure: bytes in, bytes out", (ours("images"),), (ours("errors"),)),
    Rule(
        "config imports nothing above it",
        (ours("config"),),
        (*LEAVES, ours("store.url"), ours("usage.prices")),
    ),
    Rule(
        "local/ runs models; it knows no provider, server or store",
        (ours("local"),),
        (*LEAVES, ours("images"), ours("config")),
    ),
    Rule(
        "providers/ know nothing of MCP, the server, the store or usage",
        (ours("providers"),),
        (*LEAVES, ours("config"), ours("images"), ours("local"), ours("redaction")),
    ),
    Rule(
        "store/ and usage/ know nothing of the server or the providers",
        (ours("store"), ours("usage")),
        (*LEAVES, ours("config"), ours("database"), ours("images"), ours("store"), ours("usage")),
    ),
    Rule(
        "the server is below the command line",
        (ours("server"),),
        tuple(
            ours(name)
            for name in (
                "errors",
                "operations",
                "providers",
                "images",
                "store",
                "usage",
                "config",
                "database",
                "redaction",
                "memory",
                "local",
                "server",
            )
        ),
    ),
)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_no_module_imports_above_its_layer(rule: Rule) -> None:
    broken = [found for found in ALL_IMPORTS if rule.broken_by(found)]
    assert not broken, f"{rule.name}: " + "; ".join(
        f"{found.module} imports {found.imported} (line {found.line})" for found in broken
    )


def test_the_rules_see_the_imports() -> None:
    """The reader finds real imports, so an empty list of broken ones means something."""
    assert Import("mcp_imagegen.images.preview", "mcp_imagegen.images.codec", 16) in ALL_IMPORTS
    assert any(
        found.module == "mcp_imagegen.providers.base" and found.imported == ours("operations")
        for found in ALL_IMPORTS
    )  # inside `if TYPE_CHECKING:`
    upward = Import("mcp_imagegen.images.inputs", "mcp_imagegen.store.base", 1)
    assert [rule.name for rule in RULES if rule.broken_by(upward)] == ["images/ is pure: bytes in, bytes out"]


def test_the_operation_table_is_the_one_list_of_operations() -> None:
    assert tuple(spec.name for spec in OPERATIONS) == get_args(Operation)
    assert len({spec.tool for spec in OPERATIONS}) == len(OPERATIONS)
    for spec in OPERATIONS:
        assert issubclass(spec.request, spec.options), f"{spec.name}'s request must carry its options"
