"""A provider fake in a process of its own: answers every `POST /v1/images/generations` with one
fixed reply (after an optional delay), so a benchmark's server shares no interpreter, and no GIL,
with its provider, as in a real deployment.

`with ReplyServer(reply) as url:` in a benchmark; the process is `python -m benchmarks.reply_server
FILE PORT DELAY_S`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.loopback import free_port


class ReplyServer:
    """The fake, started on a free loopback port for the length of the block."""

    def __init__(self, reply: bytes, delay_s: float = 0.0) -> None:
        self._reply = reply
        self._delay_s = delay_s
        self._folder = tempfile.TemporaryDirectory()
        self._process: subprocess.Popen[bytes] | None = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ReplyServer:
        body = Path(self._folder.name) / "reply.json"
        body.write_bytes(self._reply)
        root = Path(__file__).resolve().parent.parent
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.reply_server", str(body), str(self.port), str(self._delay_s)],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("the reply server exited at start")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the reply server did not start")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._folder.cleanup()


def serve(body: Path, port: int, delay_s: float) -> None:
    reply = body.read_bytes()

    async def images(request: Request) -> Response:
        await request.body()
        if delay_s:
            await anyio.sleep(delay_s)
        return Response(reply, media_type="application/json")

    app = Starlette(routes=[Route("/v1/images/generations", images, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", backlog=4096)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
