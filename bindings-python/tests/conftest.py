"""Every test starts its own hub: a real c2d hub in this process, on free ports, with a
manual clock and small limits so that every rule can be reached quickly."""

from __future__ import annotations

import base64
import socket
import threading
from typing import Iterator

import pytest

import c2d
from c2d.testing import LocalHub

#: The device transports, each run through the whole scenario list.
TRANSPORTS = list(c2d.Transport)
#: How often the HTTPS devices of the tests poll (a local hub does not throttle).
POLL = 0.05
#: How long a test waits for something that should come at once.
WAIT = 15.0


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub(
        manual_clock=True,
        feedback_interval=0.0,
        max_delivery_count=3,
        max_queue_depth=5,
        max_message_size=1000,
    ) as h:
        yield h


def settles_all(transport: c2d.Transport) -> bool:
    """Whether the transport can reject and abandon (and says when a message was enqueued):
    every transport but MQTT's."""
    return transport not in (c2d.Transport.MQTT, c2d.Transport.MQTT_WS)


def fast_retry() -> c2d.RetryPolicy:
    return c2d.RetryPolicy.fixed(0.1, max_retries=50)


class ConnectProxy:
    """A real HTTP CONNECT proxy on 127.0.0.1 that wants ``user:secret`` and records the
    targets of its tunnels."""

    AUTH = "Basic " + base64.b64encode(b"user:secret").decode()

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self.tunnels: "list[str]" = []
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, password: str = "secret") -> str:
        return f"http://user:{password}@127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                byte = client.recv(1)
                if not byte or len(head) > 8192:
                    return
                head += byte
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1] if lines[0].startswith("CONNECT ") else ""
            auth = [v.strip() for k, _, v in (l.partition(":") for l in lines[1:]) if k.lower() == "proxy-authorization"]
            if auth != [self.AUTH]:
                self.refused += 1
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            try:
                upstream = socket.create_connection((host, int(port)))
            except (OSError, ValueError):
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                return
            self.tunnels.append(target)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with upstream:
                pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                pump.start()
                _pump(client, upstream)
                pump.join()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    p = ConnectProxy()
    yield p
    p.close()
