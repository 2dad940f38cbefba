"""Request bodies over `MAX_BODY_BYTES` are a 413 `{"error"}`, before they are read whole.

Every body the API takes is a small JSON object; without a cap a client could make a process
buffer gigabytes. Starlette's own limiter answers text/plain when a route never reads the
body, so this one checks `Content-Length` first and counts chunked bodies as they arrive.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
TOO_LARGE = f"request body too large: at most {MAX_BODY_BYTES // 1024} KiB"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"error": TOO_LARGE}, 413)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # chunked: no Content-Length to trust
                    raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, limited, send)
