"""Every error answered in FastAPI's `{"detail": ...}` shape; a client's mistake is never a 500."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.errors import AppError
from app.core.routing import all_routes

logger = logging.getLogger("app.errors")
RETRY_AFTER_SECONDS = "5"


def _rate_limit_headers(request: Request) -> dict[str, str]:
    """A rate-limited route's RateLimit fields go with its refusals too (app.core.ratelimit)."""
    headers: dict[str, str] = getattr(request.state, "rate_limit_headers", None) or {}
    return headers


async def app_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AppError)
    headers = {**_rate_limit_headers(request), **error.headers}
    return JSONResponse(
        {"detail": error.detail, **error.fields}, error.status_code, headers=headers
    )


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 shape without the `input` echo: a rejected password is never sent back."""
    assert isinstance(error, RequestValidationError)
    errors: list[dict[str, Any]] = [
        {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "")), "type": item["type"]}
        for item in error.errors()
    ]
    return JSONResponse({"detail": errors}, 422, headers=_rate_limit_headers(request))


async def http_error(request: Request, error: Exception) -> Response:
    """Framework errors: an unparsable body (bad UTF-8, nesting too deep, a broken form) is
    invalid input (422); a 405 lists every method the path serves, not just one route's."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400:
        body_error = {"loc": ["body"], "msg": "Request body could not be parsed", "type": "body"}
        return JSONResponse({"detail": [body_error]}, 422)
    if error.status_code == 405:
        headers = {**(error.headers or {}), "Allow": _allowed_methods(request)}
        return JSONResponse({"detail": error.detail}, 405, headers=headers)
    return await http_exception_handler(request, error)


def _allowed_methods(request: Request) -> str:
    """Each method of a path is its own route, so Starlette's Allow names only the first;
    HEAD is served wherever GET is (middleware.HeadMiddleware)."""
    methods: set[str] = set()
    for route in all_routes(request.app):
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def integrity_error(_request: Request, _error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "Conflict with existing data"}, 409)


async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.warning(
        "database unavailable: %s",
        type(error).__name__,
        extra={"request_id": getattr(request.state, "request_id", None)},
    )
    return JSONResponse(
        {"detail": "Database unavailable, retry later"},
        503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def dbapi_error(request: Request, error: Exception) -> JSONResponse:
    """Connection-level failures are 503; anything else from the database is our bug."""
    assert isinstance(error, DBAPIError)
    if error.connection_invalidated:
        return await database_unavailable(request, error)
    raise error


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    # OSError includes ConnectionError, which reads on the driver raise for a lost connection.
    for unavailable in (OperationalError, InterfaceError, PoolTimeout, OSError):
        app.add_exception_handler(unavailable, database_unavailable)
    app.add_exception_handler(DBAPIError, dbapi_error)
