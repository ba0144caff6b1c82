"""Routes of the second factor: enrolment, confirmation, removal, and the login's second step."""

from typing import Annotated, Any

from fastapi import Depends, Request, Response, status

from app.auth.dependencies import CurrentUser, EnrollingUser
from app.auth.mfa import service
from app.auth.mfa.keys import MfaKeys
from app.auth.mfa.schemas import (
    MfaVerifyRequest,
    RecoveryCodes,
    TotpConfirmRequest,
    TotpEnrolment,
    TotpRemoveRequest,
)
from app.auth.openapi import (
    ADDRESS_LIMITED,
    INVALID_INPUT,
    UNAUTHORIZED,
    error_response,
    limited,
    token_response,
)
from app.auth.schemas import TokenResponse
from app.core import ratelimit
from app.core.dependencies import MetaDep, SessionDep, SettingsDep, SigningKeyDep
from app.core.routing import APIRouter

router = APIRouter(tags=["auth"])

MFA_LIMIT = Depends(ratelimit.rate_limit("mfa", lambda settings: settings.rate_limit_mfa))
CONFLICT = error_response("MFA is already enabled, or there is nothing to confirm or remove.")


async def get_mfa_keys(request: Request) -> MfaKeys:
    keys: MfaKeys = request.app.state.mfa_keys
    return keys


MfaKeysDep = Annotated[MfaKeys, Depends(get_mfa_keys)]


@router.post(
    "/auth/mfa/totp/",
    status_code=status.HTTP_201_CREATED,
    response_model=TotpEnrolment,
    summary="Enrol an authenticator app (TOTP)",
    description=(
        "Step 1 of 2. A new secret for an authenticator app (RFC 6238: SHA-1, 30-second "
        "steps, 6 digits), as base32 text and as an `otpauth://` URI to show as a QR code. "
        "It is shown in this answer only, and is stored encrypted. Nothing changes for the "
        "user's logins until `POST /auth/mfa/totp/confirm` proves the app has it; enrolling "
        "again before that replaces the secret. Open to every role, also to a user whose "
        "role must enrol before anything else (`MFA_REQUIRED_ROLES`)."
    ),
    responses={401: UNAUTHORIZED, 409: CONFLICT},
)
async def enrol_totp(
    principal: EnrollingUser,
    session: SessionDep,
    settings: SettingsDep,
    keys: MfaKeysDep,
    response: Response,
) -> Any:
    enrolment = await service.enrol(session, keys, settings, principal)
    response.headers["Pragma"] = "no-cache"
    return TotpEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@router.post(
    "/auth/mfa/totp/confirm",
    response_model=RecoveryCodes,
    summary="Confirm the authenticator app",
    description=(
        "Step 2 of 2. A code from the app turns MFA on: from now on a login needs the "
        "password and a code. The answer holds ten single-use recovery codes, for a login "
        "without the app: shown this once, stored only as keyed hashes. A user whose role "
        "requires MFA logs in again afterwards (with a code) to use the API."
    ),
    responses={401: UNAUTHORIZED, 409: CONFLICT, 422: INVALID_INPUT},
)
async def confirm_totp(
    data: TotpConfirmRequest,
    principal: EnrollingUser,
    session: SessionDep,
    keys: MfaKeysDep,
    response: Response,
) -> Any:
    recovery_codes = await service.confirm(session, keys, principal, data.code)
    response.headers["Pragma"] = "no-cache"
    return RecoveryCodes(recovery_codes=recovery_codes)


@router.delete(
    "/auth/mfa/totp/",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Turn MFA off",
    description=(
        "Needs the current password and a code of the app (or an unused recovery code). "
        "A wrong one is a 422 naming it, and counts toward the lock-out like a failed login. "
        "The recovery codes are deleted too."
    ),
    responses={
        401: UNAUTHORIZED,
        403: error_response("The caller's role requires MFA and his token has no second factor."),
        409: CONFLICT,
        422: INVALID_INPUT,
        429: error_response("Too many failures for this user; see `Retry-After`."),
    },
)
async def remove_totp(
    data: TotpRemoveRequest,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    keys: MfaKeysDep,
) -> Response:
    await service.remove(session, keys, settings, principal, data.current_password, data.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/mfa/verify",
    response_model=TokenResponse,
    summary="Log in, step 2: the code",
    description=(
        "For a user with MFA, `POST /auth/login/` with the right password answers 401 "
        '`{"detail": "MFA required", "mfa_token": "..."}`. Send that `mfa_token` with a '
        "code of the authenticator app (or an unused recovery code) to get the token pair; "
        'the access token\'s `amr` is `["pwd", "otp"]`. The MFA token is single use (any '
        "answer spends it) and valid 5 minutes. A code is accepted once, within one "
        "30-second step of the server's clock either way. Wrong codes count toward the "
        "username's lock-out (429 once locked, as at login). Each client address is "
        "limited too (`RateLimit-Policy`, `RateLimit`)."
    ),
    responses={
        401: error_response(
            "Wrong or already used code, or a bad, expired or spent MFA token: log in again.",
            headers=UNAUTHORIZED["headers"],
        ),
        422: INVALID_INPUT,
        429: limited(
            "Too many failed logins for this username (until the lock-out window ends), "
            "or " + ADDRESS_LIMITED[0].lower() + ADDRESS_LIMITED[1:]
        ),
    },
    dependencies=[MFA_LIMIT],
)
async def verify_mfa(
    data: MfaVerifyRequest,
    session: SessionDep,
    settings: SettingsDep,
    key: SigningKeyDep,
    keys: MfaKeysDep,
    meta: MetaDep,
    response: Response,
) -> Any:
    pair = await service.verify(session, key, keys, settings, meta, data.mfa_token, data.code)
    return token_response(pair, response)
