"""Real servers on loopback for the tests: uvicorn for our app, a scripted webhook receiver."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server the test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def busy_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that a socket listens on while the block runs.

    For ``serve`` refusals that must come before the port is bound: if a check regressed,
    ``serve`` then refuses the port in use at once instead of serving (and hanging the test).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 at a free port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(3000):  # up to 30 s on a loaded machine
        if server.started:
            break
        time.sleep(0.01)
    else:
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def served_client(app: Any, engine: Any) -> Iterator[tuple[Any, Any]]:
    """Serve ``app`` (built on ``engine``) on loopback; yield ``(httpx.Client, engine)``.

    The client's base URL is the server's; the engine is stopped afterwards.
    """
    import httpx

    try:
        with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client, engine
    finally:
        engine.stop()


@dataclass
class Receiver:
    """A webhook receiver that answers the scripted statuses in turn (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@contextmanager
def receiver(statuses: list[int]) -> Iterator[Receiver]:
    """A real HTTP server on loopback recording each POST (headers and JSON body)."""
    state = Receiver(list(statuses))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                status = state.statuses.pop(0) if state.statuses else 200
                state.received.append({"headers": dict(self.headers),
                                       "body": json.loads(body), "answered": status})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
