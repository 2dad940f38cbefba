"""A local stand-in for api.github.com: replays recorded responses from a JSON file.

Each route is `{"method", "path", "query"? (exact), "query_contains"? (substring),
"responses": [{"status", "headers"?, "body"}]}`, the first match wins;
a route with several responses plays them in order and then repeats the last one (how a rate
limit followed by success is recorded). `{base}` in a header or body is this server's URL
(the routes may also be given as a list instead of a fixture file name). Every
request is kept, headers included, so tests can assert what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Replay:
    routes: list[dict[str, Any]]
    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    _played: dict[int, int] = field(default_factory=dict)

    def answer(self, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        for index, route in enumerate(self.routes):
            if route.get("method", "GET") != method or route["path"] != parts.path:
                continue
            if "query" in route and any(query.get(k) != str(v) for k, v in route["query"].items()):
                continue
            if "query_contains" in route and any(
                str(v) not in query.get(k, "") for k, v in route["query_contains"].items()
            ):
                continue
            responses = route["responses"]
            played = self._played.get(index, 0)
            self._played[index] = played + 1
            response = responses[min(played, len(responses) - 1)]
            headers = {
                k: str(v).replace("{base}", self.base_url)
                for k, v in response.get("headers", {}).items()
            }
            body = json.dumps(response.get("body", {})).replace("{base}", self.base_url)
            return response["status"], headers, body.encode()
        return 404, {}, json.dumps({"message": "Not Found (no recording)"}).encode()


@contextmanager
def replay_server(fixture: str | list[dict[str, Any]], latency: float = 0.0) -> Iterator[Replay]:
    """`latency` seconds per answer, as over a real network (the browser tests watch
    progress move)."""
    if isinstance(fixture, str):
        replay = Replay(json.loads((FIXTURES / fixture).read_text())["routes"])
    else:
        replay = Replay(fixture)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            replay.requests.append({"path": self.path, "headers": dict(self.headers)})
            time.sleep(latency)
            status, headers, body = replay.answer("GET", self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    replay.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    # shutdown() waits for the loop's next poll: the default half second, at every test's end.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()
