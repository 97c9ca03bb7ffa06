"""Build an MCPB bundle (`.mcpb`) that runs on a machine with only Python.

MCPB's `python` server type runs `server/main.py` with the user's Python and expects every
dependency inside the bundle (`server/lib`). Pillow and pydantic-core are compiled, so a
bundle is built for one platform and one Python minor version: pip fetches their wheels for
that target (`--only-binary :all:`), and the manifest's compatibility is narrowed to match.
Build one bundle per target you publish, e.g.

    python manifest/build_bundle.py                                    # this machine
    python manifest/build_bundle.py --platform macosx_11_0_arm64 --python 3.12
    python manifest/build_bundle.py --platform win_amd64 --python 3.12

Needs `mcpb` (npm `@anthropic-ai/mcpb`) on PATH or in `--mcpb`.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = '''"""Start mcp-imagegen from this bundle: its dependencies are in lib/ next to this file."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from mcp_imagegen.cli import main  # noqa: E402

main()
'''
MCPB_PLATFORM = {"linux": "linux", "darwin": "darwin", "win32": "win32"}


def target_platform(pip_platform: str | None) -> str:
    """The MCPB platform name of a pip platform tag (or of this machine)."""
    tag = (pip_platform or sys.platform).lower()
    if tag.startswith(("manylinux", "musllinux", "linux")):
        return "linux"
    if tag.startswith(("macosx", "darwin")):
        return "darwin"
    if tag.startswith("win"):
        return "win32"
    raise SystemExit(f"unknown platform {pip_platform!r}")


def build(out: Path, pip_platform: str | None, python: str, mcpb: str) -> Path:
    manifest = json.loads((ROOT / "manifest" / "manifest.json").read_text(encoding="utf-8"))
    major, minor = python.split(".")[:2]
    manifest["compatibility"]["platforms"] = [target_platform(pip_platform)]
    manifest["compatibility"]["runtimes"]["python"] = f">={major}.{minor} <{major}.{int(minor) + 1}"
    with tempfile.TemporaryDirectory() as work:
        bundle = Path(work) / "bundle"
        lib = bundle / "server" / "lib"
        lib.mkdir(parents=True)
        (bundle / "server" / "main.py").write_text(LAUNCHER, encoding="utf-8")
        (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(lib), "--no-compile"]
        if pip_platform or python != platform.python_version()[: len(python)]:
            command += ["--only-binary", ":all:", "--python-version", python, "--implementation", "cp"]
            if pip_platform:
                command += ["--platform", pip_platform]
        subprocess.run([*command, str(ROOT)], check=True)  # noqa: S603 - our own pip, our own arguments
        for cache in lib.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([mcpb, "pack", str(bundle), str(out)], check=True)  # noqa: S603 - the mcpb the user named
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--platform", help="a pip platform tag (default: this machine)")
    parser.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    parser.add_argument("--mcpb", default=shutil.which("mcpb") or "mcpb")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from mcp_imagegen import __version__

    name = f"mcp-imagegen-{__version__}-{target_platform(args.platform)}-py{args.python}.mcpb"
    print(build(args.out or ROOT / "dist" / name, args.platform, args.python, args.mcpb))


if __name__ == "__main__":
    main()
