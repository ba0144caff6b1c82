"""The project's error hierarchy; one handler in main.py turns each into its HTTP answer."""

from typing import Any, ClassVar


class AppError(Exception):
    status_code: ClassVar[int] = 500
    default_detail: ClassVar[str] = "Internal error"

    def __init__(self, detail: Any = None, headers: dict[str, str] | None = None) -> None:
        self.detail = self.default_detail if detail is None else detail
        self.headers = headers or {}
        self.fields: dict[str, Any] = {}  # answered beside `detail`
        super().__init__(str(self.detail))


class Unauthorized(AppError):
    status_code = 401
    default_detail = "Could not validate credentials"

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail, {"WWW-Authenticate": "Bearer"})


class MfaRequired(Unauthorized):
    """The right password of a user with a second factor: not yet a login. The body carries
    the token that `POST /auth/mfa/verify` takes with the code."""

    def __init__(self, mfa_token: str) -> None:
        super().__init__("MFA required")
        self.fields = {"mfa_token": mfa_token}  # not in the exception's text (its args)


class Forbidden(AppError):
    status_code = 403
    default_detail = "Not allowed for your role"


class NotFound(AppError):
    status_code = 404
    default_detail = "Not found"


class Conflict(AppError):
    status_code = 409
    default_detail = "Conflict with the current state"


class PreconditionFailed(AppError):
    status_code = 412
    default_detail = "The resource has changed since the version given in If-Match"


class InvalidInput(AppError):
    """422 for a rule a schema cannot express, in FastAPI's validation error shape."""

    status_code = 422

    def __init__(self, loc: tuple[str | int, ...], msg: str, type_: str = "value_error") -> None:
        super().__init__([{"loc": list(loc), "msg": msg, "type": type_}])


class IncorrectPassword(InvalidInput):
    """422 on a password field that does not match: counted like a failed login."""


class IncorrectCode(InvalidInput):
    """422 on a second-factor code that does not match (its refusal is recorded)."""


class TooManyRequests(AppError):
    status_code = 429
    default_detail = "Too many attempts, try again later"

    def __init__(
        self, retry_after: int, detail: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail, {**(headers or {}), "Retry-After": str(max(1, retry_after))})


class ShuttingDown(AppError):
    """A request cut short by the server's shutdown (core.middleware.CancelledRequestMiddleware)."""

    status_code = 503
    default_detail = "The server is shutting down; retry the request"

    def __init__(self) -> None:
        super().__init__(None, {"Retry-After": "1"})
