"""Pure ASGI middleware: request ids, the request body limit, no caching of personal data,
HEAD, requests cut short by the shutdown."""

import asyncio
import re
import uuid
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import AppError, ShuttingDown

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    """Every response carries X-Request-ID: the client's when sane, else a new one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, REQUEST_ID_HEADER)
        request_id = given.decode() if given and _SANE_REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every answer under `prefixes`, errors included: they name
    people (records, profiles, tokens, the audit trail), so no cache may keep one."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    def _applies(self, scope: Scope) -> bool:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._applies(scope):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"cache-control"
                ]
                message = {**message, "headers": [*headers, (b"cache-control", b"no-store")]}
            await send(message)

        await self.app(scope, receive, send_no_store)


class HeadMiddleware:
    """HEAD is GET without the body (RFC 9110, 9.3.2): wherever GET is served, HEAD answers
    with the GET's status and headers (Content-Length, ETag, Link...) and an empty body.

    The request goes in as a GET; the scope is changed in place, so that the middlewares
    outside see the route it matched, and says HEAD again from the response's start on (the
    server reads it there to send no body, the metrics and the access log count a HEAD).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                scope["method"] = "HEAD"
            elif message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        scope["method"] = "GET"
        try:
            await self.app(scope, receive, send_headers_only)
        finally:
            scope["method"] = "HEAD"


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing passes it through as a 413."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Request body too large")


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413, whether declared or streamed in chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _send_413(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_413(send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _send_413(send: Send) -> None:
    body = orjson.dumps({"detail": "Request body too large"})
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": 413, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})


class CancelledRequestMiddleware:
    """A request the server cancels before it has answered (uvicorn cancels those still
    running when its graceful-shutdown period ends) answers 503 with Retry-After, through
    the app's own error handler (an OperationOutcome under /fhir), rather than with the
    server's bare 500 or a dropped connection. A write cancelled in a statement is rolled
    back by the database cancelling that statement, which the shutdown waits for
    (core.db.close_engine), so the client may safely retry it elsewhere."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, noting_start)
        except asyncio.CancelledError:
            if not started:
                handler = scope["app"].exception_handlers[AppError]
                response = await handler(Request(scope, receive), ShuttingDown())
                await response(scope, receive, send)
            raise
