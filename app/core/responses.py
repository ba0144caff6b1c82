"""Error answers declared in the OpenAPI schema, so it says honestly what each route returns."""

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response

MAX_ID = 2**63 - 1  # ids are 64-bit; a bigger path or query id is a 422, never a 500


class ErrorMessage(BaseModel):
    detail: str


_DESCRIPTIONS = {
    401: "Missing, invalid, expired or revoked token",
    403: "The caller's role may never use this endpoint",
    404: "Not found, or not visible to the caller",
    409: "Conflict with the current state",
    412: "Stale If-Match: the resource changed since that version",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the given status codes (422 is declared by FastAPI itself)."""
    declared: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorMessage, "description": _DESCRIPTIONS[code]}
        if code == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}
            }
        declared[code] = entry
    return declared


def json_response(
    content: Any, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """JSON written once from plain values (rows made dicts), as the route's response
    model would write them: times in UTC with `Z`, dates as `YYYY-MM-DD`."""
    body = orjson.dumps(content, option=orjson.OPT_UTC_Z)
    return Response(body, status_code, headers, media_type="application/json")
