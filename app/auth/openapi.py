"""OpenAPI pieces the auth routes share: their error answers, rate-limit headers, and the
token answer itself."""

from typing import Any

from fastapi import Response

from app.auth.schemas import TokenResponse
from app.auth.tokens import TokenPair
from app.core.responses import ErrorMessage

VALIDATION_ERROR_REF = {"$ref": "#/components/schemas/HTTPValidationError"}
ADDRESS_LIMITED = "Too many requests from this client address; see `Retry-After`."


def error_response(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ErrorMessage, "description": description, **extra}


UNAUTHORIZED = error_response(
    "No, bad, expired or revoked token (with `WWW-Authenticate: Bearer`).",
    headers={"WWW-Authenticate": {"schema": {"type": "string"}, "example": "Bearer"}},
)
INVALID_INPUT = {
    "description": "Invalid input; `detail` names the field. Rejected values are never echoed.",
    "content": {"application/json": {"schema": VALIDATION_ERROR_REF}},
}
_HEADER = {"schema": {"type": "string"}}
RATE_LIMIT_HEADERS = {
    "RateLimit-Policy": {
        **_HEADER,
        "description": "The address's quota and window (draft-ietf-httpapi-ratelimit-headers)",
        "example": '"login";q=300;w=60',
    },
    "RateLimit": {
        **_HEADER,
        "description": "Requests left to this address, and seconds until its window ends",
        "example": '"login";r=299;t=58',
    },
}
RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"},
}


def limited(description: str) -> dict[str, Any]:
    return error_response(description, headers={**RETRY_AFTER, **RATE_LIMIT_HEADERS})


def token_response(pair: TokenPair, response: Response) -> TokenResponse:
    # RFC 6749 §5.1 asks token responses for this too (Cache-Control: core.middleware).
    response.headers["Pragma"] = "no-cache"
    return TokenResponse(
        access_token=pair.access.token,
        token_type="bearer",
        expires_in=pair.expires_in,
        refresh_token=pair.refresh.token,
    )
