"""A small HTTP forward proxy on loopback for tests: absolute-form requests and CONNECT tunnels.

It resolves host names from its own table first (`names`), so tests can use names that only the
proxy knows, as a real proxy resolves names the client cannot. Every request line it receives,
and the Proxy-Authorization it came with, is logged.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ProxiedRequest:
    line: str  # "GET http://host/path HTTP/1.1" or "CONNECT host:443 HTTP/1.1"
    authorization: str | None


class ForwardProxy:
    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self.names = dict(names or {})
        self.log: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ForwardProxy:
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.connection, self.rfile)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def lines(self) -> list[str]:
        with self._lock:
            return [r.line for r in self.log]

    def _address(self, host: str, port: int) -> tuple[str, int]:
        return self.names.get(host, host), port

    def _handle(self, client: socket.socket, rfile: Any) -> None:
        """Requests one after another on a kept-alive client connection, as real proxies serve."""
        while line := rfile.readline(65536).decode("latin-1").rstrip("\r\n"):
            if not self._one(client, rfile, line):
                return

    def _one(self, client: socket.socket, rfile: Any, line: str) -> bool:
        """Serve one request; False when the client connection is done (a tunnel ended)."""
        headers: list[str] = []
        while (header := rfile.readline(65536).decode("latin-1")) not in ("\r\n", "\n", ""):
            headers.append(header)
        auth = next(
            (h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("proxy-auth")),
            None,
        )
        with self._lock:
            self.log.append(ProxiedRequest(line, auth))
        method, target, _ = line.split(" ", 2)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            self._tunnel(client, self._address(host, int(port)))
            return False
        self._forward(client, method, target, headers)
        return True

    def _tunnel(self, client: socket.socket, address: tuple[str, int]) -> None:
        try:
            upstream = socket.create_connection(address, timeout=10)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with upstream:
            _pipe(client, upstream)

    def _forward(self, client: socket.socket, method: str, target: str, headers: list[str]) -> None:
        url = urlsplit(target)
        path = url.path + (f"?{url.query}" if url.query else "")
        kept = [h for h in headers if not h.lower().startswith(("proxy-", "connection:"))]
        head = f"{method} {path or '/'} HTTP/1.1\r\n{''.join(kept)}Connection: close\r\n\r\n"
        address = self._address(url.hostname or "", url.port or 80)
        with socket.create_connection(address, timeout=10) as upstream:
            upstream.sendall(head.encode("latin-1"))
            while chunk := upstream.recv(65536):  # the origin closes after its answer
                client.sendall(chunk)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with contextlib.suppress(OSError):
        while True:
            ready, _, _ = select.select([a, b], [], [], 10)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
