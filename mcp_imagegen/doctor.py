"""`mcp-imagegen doctor [--check]`: what this installation can do, and whether its keys work.

It prints the version, the store folder and its size, every provider (configured or not,
what enables it, what it can do) and whether the optional extras are installed. With
`--check` it makes one cheap authenticated request per configured provider (listing models,
never a paid generation) and reports each outcome; the exit status is 1 if any failed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx2

from mcp_imagegen import __version__
from mcp_imagegen.config import Settings
from mcp_imagegen.errors import ImagegenError
from mcp_imagegen.providers.registry import ProviderRegistry
from mcp_imagegen.providers.spec import ProviderSpec
from mcp_imagegen.redaction import redact

CHECK_TIMEOUT_S = 20.0
EXTRAS = {
    "vertex": ("google.auth", "Application Default Credentials for Vertex AI"),
    "local": ("onnxruntime", "segmentation, upscaling and OCR on this machine (the local provider)"),
}


async def run(settings: Settings, check: bool) -> tuple[list[str], bool]:
    """The report's lines, and whether every check (if any) passed."""
    lines = [f"mcp-imagegen {__version__}", *store_lines(settings.store_dir), "", "providers:"]
    ok = True
    async with httpx2.AsyncClient(timeout=CHECK_TIMEOUT_S, follow_redirects=False) as client:
        registry = ProviderRegistry(settings, client)
        for spec in registry.specs:
            configured = registry.is_configured(spec.name)
            caps = registry.capabilities(spec.name)
            state = (
                "configured"
                if configured
                else f"not configured (set {' and '.join(spec.env_vars) or 'it up'})"
            )
            lines.append(f"  {spec.name}: {state}")
            lines.append(
                f"      {', '.join(sorted(caps.operations))}; default model {caps.default_model or '-'}"
            )
            if caps.vision_models:
                lines.append(f"      vision models: {', '.join(caps.vision_models)}")
            if check and configured and spec.probe is not None:
                outcome, passed = await _check(spec, settings, client)
                ok = ok and passed
                lines.append(f"      check: {outcome}")
    lines += ["", *await overlay_lines(settings)]
    local_lines, local_ok = model_lines(settings.models_dir)
    lines += ["", *local_lines]
    ok = ok and (local_ok or not check)
    lines += ["", "extras:"]
    for extra, (module, purpose) in EXTRAS.items():
        installed = importlib.util.find_spec(module.split(".")[0]) is not None and _importable(module)
        state = "installed" if installed else f"not installed (pip install 'mcp-imagegen[{extra}]')"
        lines.append(f"  [{extra}] {purpose}: {state}")
    return lines, ok


async def overlay_lines(settings: Settings) -> list[str]:
    """What the last `models check` found (shut down, deprecated, new), or that none has run."""
    from mcp_imagegen.store.selection import model_overlay

    try:
        async with model_overlay(settings) as store:
            overlay = await store.read()
    except ImagegenError as exc:
        return [f"model check: the overlay could not be read ({exc})"]
    if overlay is None:
        return [
            "model check: never run; `mcp-imagegen models check` compares the providers' lists with the data"
        ]
    when = overlay.checked_at.strftime("%Y-%m-%d %H:%M UTC")
    learned = f"{len(overlay.records)} model(s) changed from the shipped data"
    return [f"model check: {when}, {learned}", *(f"  {line}" for line in overlay.report)]


def model_lines(models_dir: Path) -> tuple[list[str], bool]:
    """Each local model's state, and the command that fixes what is missing; False if one is corrupt."""
    from mcp_imagegen.local.model_files import FETCH_COMMAND, all_statuses

    lines = [f"local models: {models_dir}"]
    statuses = all_statuses(models_dir)
    for state in statuses:
        lines.append(f"  {state.model.name}: {state.summary}")
    if any(state.state != "ready" for state in statuses):
        lines.append(f"  fix: {FETCH_COMMAND}")
    return lines, all(state.state != "corrupt" for state in statuses)


def store_lines(store: Path) -> list[str]:
    files = [path for path in (store / "images").rglob("*") if path.is_file()] if store.exists() else []
    size = sum(path.stat().st_size for path in files)
    return [f"store: {store}", f"       {len(files)} image(s), {size / 1_000_000:.1f} MB"]


async def _check(spec: ProviderSpec, settings: Settings, client: httpx2.AsyncClient) -> tuple[str, bool]:
    assert spec.probe is not None
    try:
        probe = await spec.probe(settings)
    except ImagegenError as exc:
        return f"FAILED: {exc}", False
    try:
        response = await client.get(probe.url, headers=probe.headers, params=probe.params or None)
    except httpx2.HTTPError as exc:
        return f"FAILED: could not reach {httpx2.URL(probe.url).host} ({type(exc).__name__})", False
    if response.status_code == 200:
        return f"ok ({httpx2.URL(probe.url).host} answered)", True
    detail = redact(response.text[:200], settings.secret_values()).strip()
    return f"FAILED: HTTP {response.status_code} from {httpx2.URL(probe.url).host}: {detail}", False


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
