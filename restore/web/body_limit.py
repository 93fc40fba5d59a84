"""Requests larger than the limit are answered 413 before their body is parsed: at once
when Content-Length says so, else as soon as the streamed body passes the limit."""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body of more than ``max_bytes`` gets 413 with the reason."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        exceeded = responded = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                exceeded = True
                raise _TooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal responded
            if exceeded:  # the app's answer to the interrupted body (FastAPI: 400) becomes the 413
                if message["type"] == "http.response.start" and not responded:
                    responded = True
                    await self._refuse(send)
                return
            responded = responded or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge:
            if not responded:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"the request is larger than the server's limit of {self.max_bytes} bytes "
                                     f"(restore serve --max-upload-bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
