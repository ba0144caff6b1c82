"""Request and response bodies of the auth domain. No response model has a password field."""

from datetime import date
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from app.auth.passwords import MAX_LENGTH, MIN_LENGTH, password_problem
from app.core.db import utcnow
from app.core.responses import MAX_ID
from app.core.schemas import RequestModel, ResponseModel, Text
from app.users.models import Role, Sex, casefold_key

USERNAME_PATTERN = r"^[A-Za-z0-9_.@+-]+$"
# A login may present whatever it likes (it fails with 401); only the size is bounded,
# so that nobody makes the server hash megabytes.
PRESENTED_PASSWORD_MAX = 1024
EMAIL_MAX_LENGTH = 254

Username = Annotated[
    str,
    StringConstraints(min_length=3, max_length=150, pattern=USERNAME_PATTERN),
    Field(examples=["alice.smith"]),
]


def _check_email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"not a valid email address: {error}") from None
    if len(casefold_key(value)) > EMAIL_MAX_LENGTH:  # the unique key must fit its column
        raise ValueError(f"must be at most {EMAIL_MAX_LENGTH} characters")
    return value  # stored exactly as sent; uniqueness is case-insensitive (email_key)


Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=EMAIL_MAX_LENGTH),
    AfterValidator(_check_email),
    Field(json_schema_extra={"format": "email"}, examples=["alice@example.org"]),
]


def _check_password(value: str) -> str:
    problem = password_problem(value)
    if problem:
        raise ValueError(problem)
    return value


NewPassword = Annotated[
    str,
    Field(
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        repr=False,
        json_schema_extra={"writeOnly": True},
    ),
    AfterValidator(_check_password),
]


PresentedPassword = Annotated[
    str,
    StringConstraints(min_length=1, max_length=PRESENTED_PASSWORD_MAX),
    Field(repr=False, json_schema_extra={"writeOnly": True}),
]


class RegisterRequest(RequestModel):
    username: Username
    email: Email
    password: NewPassword
    full_name: Annotated[str, Text(200, 1)]
    role: Role = Role.PATIENT
    # doctors only
    department_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    specialization: Annotated[str, Text(200)] | None = None
    license_number: Annotated[str, Text(64)] | None = None
    # patients only
    date_of_birth: date | None = None
    sex: Sex | None = None
    phone: Annotated[str, Text(32)] | None = None

    @field_validator("password")
    @classmethod
    def _not_the_username(cls, value: str, info: ValidationInfo) -> str:
        username = info.data.get("username")
        problem = password_problem(value, username) if isinstance(username, str) else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("date_of_birth")
    @classmethod
    def _not_in_the_future(cls, value: date | None) -> date | None:
        if value is not None and value > utcnow().date():
            raise ValueError("must not be in the future")
        return value


class LoginRequest(RequestModel):
    username: Annotated[str, Text(150, 1)]
    password: PresentedPassword


class LoginForm(RequestModel):
    """The OAuth2 password grant as Swagger's Authorize sends it (form-encoded)."""

    grant_type: Literal["password"] | None = None
    username: Annotated[str, Text(150, 1)]
    password: PresentedPassword
    scope: Annotated[str, Text(1000)] = ""
    client_id: Annotated[str, Text(200)] | None = None
    client_secret: Annotated[str, Text(200)] | None = Field(
        default=None, repr=False, json_schema_extra={"writeOnly": True}
    )


class RefreshRequest(RequestModel):
    refresh_token: Annotated[str, Text(4096, 1)] = Field(repr=False)


class PasswordChangeRequest(RequestModel):
    current_password: PresentedPassword
    new_password: NewPassword


class TokenResponse(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIs...",
                    "token_type": "bearer",
                    "expires_in": 1800,
                    "refresh_token": "eyJhbGciOiJIUzI1NiIs...",
                }
            ]
        }
    )

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Lifetime of the access token, in seconds")
    refresh_token: str
