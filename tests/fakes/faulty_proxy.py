"""A loopback TCP proxy that resets the first connections it gets, then forwards to a fake.

A reset (RST, through SO_LINGER 0) after reading the request is what a client sees when a
load balancer or a crashed server drops a connection: no HTTP reply at all.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType


class ResettingProxy:
    """`with ResettingProxy(upstream_port, resets=2) as proxy: proxy.url` forwards to 127.0.0.1:upstream."""

    def __init__(self, upstream_port: int, resets: int) -> None:
        self.resets_left = resets
        self.connections = 0
        self._upstream_port = upstream_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ResettingProxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._listener.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.resets_left > 0:
                self.resets_left -= 1
                client.recv(65536)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
