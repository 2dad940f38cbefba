"""Every HTTP response says `Referrer-Policy: no-referrer`.

The dashboard link carries the sign-in token in its query (`/monitoring?token=…`): without
this header a browser would send that URL as the `Referer` of every request the page makes
to another site (a link, an image). Pure ASGI, so static files and error pages get it too.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = (b"referrer-policy", b"no-referrer")


class NoReferrer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), HEADER]
            await send(message)

        await self.app(scope, receive, send_with_policy)
