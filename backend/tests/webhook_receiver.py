"""A local webhook receiver for the alert tests: an HTTP server in a thread that keeps
every POST's JSON body and answers the status codes it is told (200 once they run out)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_PATH = "/hooks/T000/B000/s3cr3t-webhook-path-0123456789"


@dataclass
class Receiver:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)  # every attempt, in order
    answers: list[int] = field(default_factory=list)  # status codes still to answer
    delay: float = 0.0  # seconds each answer takes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, state: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.posts if state is None or p["state"] == state]

    def wait(self, count: int, state: str | None = None, timeout: float = 30) -> float:
        """Seconds it took until `count` posts (of `state`) had arrived."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if len(self.bodies(state)) >= count:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"{len(self.bodies(state))} {state or ''} posts, not {count}")


@contextmanager
def webhook_receiver(answers: list[int] | None = None, delay: float = 0.0) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}")
    receiver.answers.extend(answers or [])
    receiver.delay = delay

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(receiver.delay)
            with receiver.lock:
                receiver.posts.append({**body, "_path": self.path})
                status = receiver.answers.pop(0) if receiver.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
