"""Routes of the auth domain: register, login, refresh, logout, me, password change (and,
in auth.mfa.router, the second factor)."""

import json
from typing import Annotated, Any

from fastapi import Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from app.auth import service
from app.auth.dependencies import (
    CurrentUser,
    EnrollingUser,
    OptionalUser,
    get_claims,
    reader_of,
)
from app.auth.mfa.schemas import LOGIN_REFUSED_EXAMPLES, LoginRefused
from app.auth.openapi import (
    ADDRESS_LIMITED,
    INVALID_INPUT,
    UNAUTHORIZED,
    error_response,
    limited,
    token_response,
)
from app.auth.schemas import (
    LoginForm,
    LoginRequest,
    PasswordChangeRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
)
from app.core import ratelimit
from app.core.dependencies import MetaDep, SessionDep, SettingsDep, SigningKeyDep
from app.core.responses import json_response
from app.core.routing import APIRouter
from app.users.schemas import UserPublic

router = APIRouter(tags=["auth"])

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


LOGIN_LIMIT = Depends(ratelimit.rate_limit("login", lambda settings: settings.rate_limit_login))
REFRESH_LIMIT = Depends(
    ratelimit.rate_limit("refresh", lambda settings: settings.rate_limit_refresh)
)


async def register_limit(caller: OptionalUser, request: Request, response: Response) -> None:
    """Registrations are limited per address, except an admin's (onboarding staff)."""
    if caller is None or not caller.is_admin:
        rate = request.app.state.settings.rate_limit_register
        await ratelimit.enforce(request, response, "register", rate)


@router.post(
    "/auth/register/",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    summary="Register a user",
    description=(
        "Anyone may register a **patient** (the default role). Registering a **doctor** "
        "(`department_id`, `specialization`, `license_number`) or an **admin** needs an "
        "admin's bearer token. Username and email are unique regardless of letter case, "
        "compatibility forms (fullwidth letters) and surrounding spaces; both are stored as sent."
    ),
    responses={
        401: UNAUTHORIZED,
        403: error_response("A role other than `patient` without an admin's token."),
        409: error_response("The username or the email is already registered (in any spelling)."),
        422: INVALID_INPUT,
        429: limited(ADDRESS_LIMITED + " An admin's registrations are not limited."),
    },
    dependencies=[Depends(register_limit)],
)
async def register(
    data: RegisterRequest, caller: OptionalUser, session: SessionDep, meta: MetaDep
) -> Any:
    return await service.register(session, meta, caller, data)


def _validation_error(error: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [{**item, "loc": ("body", *item["loc"])} for item in error.errors()]
    )


def _body_error(msg: str, type_: str) -> RequestValidationError:
    return RequestValidationError([{"type": type_, "loc": ("body",), "msg": msg}])


async def login_credentials(request: Request) -> service.Credentials:
    """The credentials from a JSON body or from the OAuth2 password form (Swagger's Authorize)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    model: type[LoginRequest] | type[LoginForm]
    data: Any
    if content_type in FORM_TYPES:
        model = LoginForm
        try:
            data = dict((await request.form()).multi_items())
        except HTTPException as error:
            if error.status_code != status.HTTP_400_BAD_REQUEST:
                raise  # 413 from the body limit
            raise _body_error("Invalid form data", "form_invalid") from None
    # As FastAPI reads every other JSON body: only when the request says it is JSON (a body
    # without a Content-Type is one a browser page may send cross-site without asking).
    elif content_type == "application/json" or content_type.endswith("+json"):
        model = LoginRequest
        try:
            data = json.loads(await request.body())
        except (ValueError, RecursionError):  # bad JSON or bad UTF-8; absurd nesting
            raise _body_error("JSON decode error", "json_invalid") from None
    else:
        raise _body_error(
            "Send JSON or an OAuth2 form (application/x-www-form-urlencoded)", "content_type"
        )
    try:
        parsed = model.model_validate(data)
    except ValidationError as error:
        raise _validation_error(error) from None
    return service.Credentials(parsed.username, parsed.password)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"schema": model.model_json_schema()}


@router.post(
    "/auth/login/",
    response_model=TokenResponse,
    summary="Log in",
    description=(
        "Exchange a username and password for an access token and a refresh token. "
        "Send JSON `{username, password}` or the OAuth2 password form "
        "(`application/x-www-form-urlencoded`, as Swagger's **Authorize** does). "
        "After 5 failures for one username within 15 minutes every attempt is refused "
        "with 429 until the window passes, even with the right password. Each client "
        "address is also limited (`RateLimit-Policy`, `RateLimit`).\n\n"
        "**Two steps for a user with MFA**: the right password answers 401 "
        '`{"detail": "MFA required", "mfa_token": "..."}`; send the `mfa_token` and a code '
        "of the authenticator app to `POST /auth/mfa/verify` for the tokens. (Swagger's "
        "**Authorize** dialog sends one step only: it works for users without MFA.)"
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": _body_schema(LoginRequest),
                "application/x-www-form-urlencoded": _body_schema(LoginForm),
            },
        }
    },
    responses={
        401: {
            "model": LoginRefused,
            "description": "Wrong username or password, or an inactive user: one answer for "
            "all. Or the right password of a user with MFA: `mfa_token` for the second step.",
            "headers": UNAUTHORIZED["headers"],
            "content": {"application/json": {"examples": LOGIN_REFUSED_EXAMPLES}},
        },
        422: INVALID_INPUT,
        429: limited(
            "Too many failed logins for this username (until the lock-out window ends), "
            "or too many requests from this client address."
        ),
    },
)
async def login(
    # First: the body is parsed (422, 413) before the database is asked anything;
    # then the client address's limit is counted, before any password is hashed.
    credentials: Annotated[service.Credentials, Depends(login_credentials)],
    _limit: Annotated[None, LOGIN_LIMIT],
    session: SessionDep,
    settings: SettingsDep,
    key: SigningKeyDep,
    meta: MetaDep,
    response: Response,
) -> Any:
    pair = await service.login(session, key, settings, meta, credentials)
    return token_response(pair, response)


@router.post(
    "/auth/refresh/",
    response_model=TokenResponse,
    summary="Refresh the tokens",
    description=(
        "Exchange a refresh token for a new pair. Each refresh token works once: "
        "presenting one that was already used revokes every token of that login."
    ),
    responses={
        401: error_response("Bad, expired, used or revoked refresh token (or an access token)."),
        422: INVALID_INPUT,
        429: limited(ADDRESS_LIMITED),
    },
    dependencies=[REFRESH_LIMIT],
)
async def refresh_tokens(
    data: RefreshRequest,
    session: SessionDep,
    settings: SettingsDep,
    key: SigningKeyDep,
    meta: MetaDep,
    response: Response,
) -> Any:
    pair = await service.refresh(session, key, settings, meta, data.refresh_token)
    return token_response(pair, response)


@router.post(
    "/auth/logout/",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Log out",
    description="Revoke the presented access token and every token of its login, everywhere. "
    "Open to a user who must enrol a second factor first, too.",
    responses={401: UNAUTHORIZED},
)
async def logout(principal: EnrollingUser, session: SessionDep) -> Response:
    await service.logout(session, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/auth/me",
    dependencies=[Depends(get_claims)],
    response_model=UserPublic,
    summary="The current user",
    description="The account the bearer token belongs to, as the database has it now "
    "(role and active flag included). Open to a user who must enrol a second factor first, "
    "too (a client learns who is logged in before it shows the enrolment).",
    responses={401: UNAUTHORIZED},
)
async def get_me(request: Request) -> Response:
    return json_response(await service.me(reader_of(request, enrolling=True)))


@router.post(
    "/auth/password/",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Change the password",
    description=(
        "Needs the current password. Afterwards every token issued to the user before "
        "the change is refused (log in again). A wrong `current_password` is a 422 naming "
        "it and counts toward the lock-out like a failed login."
    ),
    responses={
        401: UNAUTHORIZED,
        422: INVALID_INPUT,
        429: error_response("Too many wrong passwords for this user; see `Retry-After`."),
    },
)
async def change_password(
    data: PasswordChangeRequest,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    await service.change_password(
        session, settings, principal, data.current_password, data.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
