"""A request the server cancels before answering (uvicorn does, when its graceful-shutdown
period ends) answers 503 in the app's error shape; the live shutdown is in
tests/reliability/test_graceful_shutdown.py."""

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message

from app.core.config import Settings
from tests.factories import create_doctor, tokens_for


async def cancelled_before_its_body(
    app: Any, path: str, content_type: bytes, token: str = ""
) -> list[Message]:
    """What the app sends for a POST to `path` cancelled while it waits for the body."""
    sent: list[Message] = []
    waiting = asyncio.Event()

    async def receive() -> Message:
        waiting.set()
        await asyncio.Event().wait()  # the body never arrives
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"test"),
            (b"content-type", content_type),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    request = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(waiting.wait(), 5)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    return sent


def answer(sent: list[Message]) -> tuple[int, dict[str, str], Any]:
    start, *bodies = sent
    assert start["type"] == "http.response.start"
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    return start["status"], headers, orjson.loads(b"".join(part["body"] for part in bodies))


async def test_a_cancelled_request_answers_503_with_retry_after(
    app: Any, sessionmaker: Any
) -> None:
    sent = await cancelled_before_its_body(app, "/api/patient_records/", b"application/json")
    status, headers, body = answer(sent)
    assert status == 503
    assert headers["retry-after"] == "1"
    assert headers["cache-control"] == "no-store"
    assert headers["x-request-id"]
    assert body == {"detail": "The server is shutting down; retry the request"}


async def test_a_cancelled_fhir_request_answers_an_operation_outcome(
    app: Any, db: AsyncSession, settings: Settings
) -> None:
    doctor = await create_doctor(db)
    tokens = await tokens_for(db, settings, doctor)
    sent = await cancelled_before_its_body(
        app, "/fhir/R4/Condition/_search", b"application/x-www-form-urlencoded", tokens.access
    )
    status, headers, body = answer(sent)
    assert status == 503
    assert headers["retry-after"] == "1"
    assert headers["content-type"] == "application/fhir+json"
    assert body == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "transient",
                "diagnostics": "The server is shutting down; retry the request",
            }
        ],
    }
