"""The MCPB manifest and the registry entry: generated from the server, valid for the real tools
(`mcpb` from npm), and the bundle `mcpb pack` makes runs with nothing but Python."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from mcp_imagegen import __version__
from mcp_imagegen.config import load_settings
from tests.connect import LEGACY_HANDSHAKE, exchange_until

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifest" / "manifest.json"
SERVER_JSON = ROOT / "manifest" / "server.json"
LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def mcpb() -> str:
    """The mcpb CLI that .ci/run installs from npm (or one on PATH)."""
    found = os.environ.get("MCPB") or shutil.which("mcpb")
    local = ROOT / ".ci-node" / "node_modules" / ".bin" / "mcpb"
    if found is None and local.exists():
        found = str(local)
    if found is None:
        pytest.fail("mcpb is not installed: run `bash .ci/run` (or npm install @anthropic-ai/mcpb)")
    return found


def test_manifests_are_what_the_server_and_pyproject_say() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manifest" / "sync_manifests.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    pyproject_version = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert pyproject_version is not None
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    entry = json.loads(SERVER_JSON.read_text(encoding="utf-8"))
    assert manifest["version"] == entry["version"] == entry["packages"][0]["version"] == pyproject_version[1]
    assert __version__ == pyproject_version[1]
    assert {tool["name"] for tool in manifest["tools"]} >= {
        "generate_image",
        "edit_image",
        "describe_image",
        "get_job",
    }


def test_every_variable_the_manifests_name_is_read_by_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    entry = json.loads(SERVER_JSON.read_text(encoding="utf-8"))
    names = set(manifest["server"]["mcp_config"]["env"]) - {"PYTHONPATH"}
    assert names == {variable["name"] for variable in entry["packages"][0]["environmentVariables"]}
    for name in sorted(names):
        value = (
            "/tmp/probe-dir"
            if name.endswith("_DIR")
            else ("https://x.example" if name.endswith("ENDPOINT") else f"probe-{name.lower()}")
        )
        monkeypatch.setenv(name, value)
    settings = load_settings()
    secrets = set(settings.secret_values())
    for variable in entry["packages"][0]["environmentVariables"]:
        name = variable["name"]
        if variable["isSecret"]:
            assert f"probe-{name.lower()}" in secrets, f"{name} is not a secret the server reads"
    assert str(settings.store_dir) == "/tmp/probe-dir"
    assert settings.default_provider == "probe-imagegen_default_provider"
    assert settings.azure.endpoint == "https://x.example"


def test_registry_entry_is_valid_and_the_readme_claims_the_name() -> None:
    schema = json.loads((ROOT / "tests" / "fixtures" / "server.schema.json").read_text(encoding="utf-8"))
    entry = json.loads(SERVER_JSON.read_text(encoding="utf-8"))
    jsonschema.validate(entry, schema)
    assert len(entry["description"]) <= 100
    assert entry["packages"][0]["runtimeHint"] == "uvx" and entry["packages"][0]["transport"] == {
        "type": "stdio"
    }
    assert all(
        v["isSecret"]
        for v in entry["packages"][0]["environmentVariables"]
        if v["name"].endswith(("_KEY", "SECRET_KEY"))
    )
    too_long = copy.deepcopy(entry) | {"description": "x" * 101}
    with pytest.raises(jsonschema.ValidationError, match="is too long"):
        jsonschema.validate(too_long, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(copy.deepcopy(entry) | {"version": "latest"}, schema)
    assert f"mcp-name: {entry['name']}" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_mcpb_validates_the_manifest_and_refuses_a_broken_copy(tmp_path: Path) -> None:
    ok = subprocess.run([mcpb(), "validate", str(MANIFEST)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = json.loads(MANIFEST.read_text(encoding="utf-8"))
    del broken["author"]
    broken["server"]["type"] = "uv"
    (tmp_path / "manifest.json").write_text(json.dumps(broken), encoding="utf-8")
    refused = subprocess.run(
        [mcpb(), "validate", str(tmp_path / "manifest.json")], capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0
    assert "author" in refused.stdout + refused.stderr


def test_the_packed_bundle_runs_with_only_python(tmp_path: Path) -> None:
    bundle = tmp_path / "mcp-imagegen.mcpb"
    subprocess.run(
        [sys.executable, str(ROOT / "manifest" / "build_bundle.py"), "--mcpb", mcpb(), "--out", str(bundle)],
        check=True,
        capture_output=True,
    )
    unpacked = tmp_path / "unpacked"
    subprocess.run([mcpb(), "unpack", str(bundle), str(unpacked)], check=True, capture_output=True)
    manifest = json.loads((unpacked / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["compatibility"]["runtimes"]["python"].startswith(
        f">={sys.version_info.major}.{sys.version_info.minor}"
    )
    # -I -S: no site-packages and no PYTHONPATH, so everything must come from the bundle's lib/.
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", str(unpacked / "server" / "main.py")],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "IMAGEGEN_STORE_DIR": str(tmp_path / "store"),
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = exchange_until(process, [*LEGACY_HANDSHAKE, LIST_TOOLS], reply_id=2)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=20)
    tools = {tool["name"] for tool in lines[-1]["result"]["tools"]}
    # Python alone, no provider key and no local extra: the tools that can run here, all in the manifest.
    assert tools == {
        "generate_image",
        "edit_image",
        "upscale_image",
        "list_providers",
        "get_job",
        "cancel_job",
        "get_usage",
    }
    assert tools < {tool["name"] for tool in manifest["tools"]}
