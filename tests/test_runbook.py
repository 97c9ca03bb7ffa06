"""The README's scale-out recipe, as written: `deploy/one-machine/cluster up` starts SeaweedFS,
PostgreSQL, two replicas and HAProxy; a client generates and lists through the balancer; `down`
stops everything and frees every port."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
import pytest
from mcp import Client

from tests.services import free_port_run, free_ports

pytestmark = pytest.mark.anyio
SCRIPT = Path(__file__).parent.parent / "deploy" / "one-machine" / "cluster"
WEED_PORTS = 10
"""How many ports `cluster` gives SeaweedFS from WEED_BASE up (its gRPC, master, volume, filer, admin
and metrics ports)."""


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *map(str, args)], env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture
def folder() -> Iterator[Path]:
    """Outside pytest's 0700 temp folder: as root, PostgreSQL runs as its own user, who must reach it."""
    path = Path(tempfile.mkdtemp(prefix="imagegen-cluster-"))
    path.chmod(0o755)
    yield path / "cluster"
    shutil.rmtree(path, ignore_errors=True)


async def test_the_one_machine_cluster_script(tmp_path: Path, folder: Path) -> None:
    lb, replica_a, replica_b, pg, s3 = free_ports(5)
    weed_base = free_port_run(WEED_PORTS)  # SeaweedFS takes the ten ports from its base up
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "LB_PORT": str(lb),
        "REPLICA_PORTS": f"{replica_a} {replica_b}",
        "PG_PORT": str(pg),
        "S3_PORT": str(s3),
        "WEED_BASE": str(weed_base),
        "IMAGEGEN_STORE_DIR": str(tmp_path / "unused"),
        "IMAGEGEN_DEFAULT_PROVIDER": "placeholder",
    }
    up = await anyio.to_thread.run_sync(functools.partial(run, "up", folder, env=env))
    started = [int(path.read_text()) for path in folder.glob("*.pid")]
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert f"http://127.0.0.1:{lb}/mcp (2 replicas" in up.stdout
        async with Client(f"http://127.0.0.1:{lb}/mcp") as client:
            made = await client.call_tool("generate_image", {"prompt": "from the run book", "size": "64x64"})
            assert not made.is_error, made.content
            assert made.structured_content is not None
            uri = made.structured_content["images"][0]["uri"]
            for _ in range(2):  # both replicas list it
                assert [str(r.uri) for r in (await client.list_resources()).resources] == [uri]
    finally:
        down = await anyio.to_thread.run_sync(functools.partial(run, "down", folder, env=env))
    assert down.returncode == 0, down.stderr
    assert not [port for port in (lb, replica_a, replica_b, pg, s3) if listening(port)]
    assert len(started) == 4 and not [pid for pid in started if alive(pid)], "down leaves no process behind"


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting to be reaped has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")
