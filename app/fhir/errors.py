"""FHIR's errors: every refusal under /fhir is an OperationOutcome, with the status code
the rest of the API gives (API.md, section 2) and its headers (WWW-Authenticate, Allow,
Retry-After).

The app's exception handlers decide each status once (core.handlers); under /fhir their
answer is rewritten into an OperationOutcome rather than decided a second time. Requests
the routes cannot serve at all (an unknown type, a write) are answered here too.
"""

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from app.core.errors import AppError

PREFIX = "/fhir"
MEDIA_TYPE = "application/fhir+json"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}

# The OperationOutcome issue code (http://hl7.org/fhir/issue-type) of each status.
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}
# FHIR answers a request it cannot process with 400 (http.html); FastAPI's 422 is that.
STATUS_UNDER_FHIR = {422: 400}


class BadRequest(AppError):
    """A search or read the server cannot run as asked (FHIR's 400)."""

    status_code = 400
    default_detail = "Bad request"


class NotAcceptable(AppError):
    status_code = 406
    default_detail = "Only JSON is served: _format=json or application/fhir+json"


class UnsupportedMediaType(AppError):
    status_code = 415
    default_detail = "POST _search takes a form body (application/x-www-form-urlencoded)"


def outcome(status: int, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": ISSUE_CODES.get(status, "exception"),
                "diagnostics": diagnostics,
            }
        ],
    }


def outcome_response(
    status: int, diagnostics: str, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps(outcome(status, diagnostics))
    return Response(body, status, headers, media_type=MEDIA_TYPE)


def under_fhir(request: Request) -> bool:
    path: str = request.scope["path"]
    return path == PREFIX or path.startswith(PREFIX + "/")


def _diagnostics(detail: Any) -> str:
    """FastAPI's `detail` as one line: a message, or the messages of a validation error."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(part) for part in item.get("loc", ()))
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg")))
        if parts:
            return "; ".join(parts)
    return "Request refused"


Handler = Callable[[Request, Any], Response | Awaitable[Response]]
_KEPT_HEADERS = ("www-authenticate", "allow", "retry-after", "ratelimit", "ratelimit-policy")


def _as_outcome(handler: Handler) -> Handler:
    async def handle(request: Request, error: Exception) -> Response:
        if under_fhir(request) and isinstance(error, HTTPException) and error.status_code == 404:
            return _unmatched(request)
        answer = handler(request, error)
        response = await answer if inspect.isawaitable(answer) else answer
        if not under_fhir(request):
            return response
        try:
            detail = orjson.loads(bytes(response.body)).get("detail")
        except (orjson.JSONDecodeError, AttributeError):
            detail = None
        status = STATUS_UNDER_FHIR.get(response.status_code, response.status_code)
        headers = {name: value for name, value in response.headers.items() if name in _KEPT_HEADERS}
        return outcome_response(status, _diagnostics(detail), headers)

    return handle


def _unmatched(request: Request) -> Response:
    """No route serves the path: a write on a read-only server, or an unknown type."""
    if request.method in WRITES:
        return outcome_response(405, "This FHIR server is read-only", {"Allow": "GET, HEAD"})
    return outcome_response(404, f"Nothing is served at {request.scope['path']}")


def install(app: FastAPI) -> None:
    """Wrap the app's exception handlers (core.handlers, installed before): under /fhir,
    their answers become OperationOutcomes."""
    for error_class, handler in list(app.exception_handlers.items()):
        app.exception_handlers[error_class] = _as_outcome(handler)
