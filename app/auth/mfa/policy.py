"""Who must show a second factor, and for what: each rule written once, here.

- A user whose role is in MFA_REQUIRED_ROLES may use nothing but the routes that let him
  get one (enrolment, and `/auth/me` and logout) until his token carries a second factor:
  until he has enrolled an authenticator and then logged in with a code. Every read
  (`auth.reader.Reader.read`) and every write (`auth.dependencies.get_principal`) asks
  `second_factor_missing` once the caller's row is known; the routes that stay open say so
  by the dependency they take (`EnrollingUser`, `reader_of(..., enrolling=True)`).
- Opening an emergency grant needs a token with `otp` in its `amr` when the doctor has MFA,
  and always when doctors are required to have it (`step_up_missing`).

The decisions use the caller's row (his role, whether he has MFA: from the database) and
his token's `amr` (signed by us, and fixed per login: auth.tokens).
"""

from collections.abc import Collection

from app.audit import service as audit
from app.audit.repository import NewEvent
from app.core.context import Principal
from app.core.errors import Forbidden
from app.core.security import ONE_TIME_CODE

ENROL_FIRST = (
    "Multi-factor authentication is required for your role: enrol an authenticator first "
    "(POST /auth/mfa/totp/, then POST /auth/mfa/totp/confirm), then log in again"
)
LOG_IN_WITH_CODE = (
    "Multi-factor authentication is required for your role: log in again with your "
    "authenticator code"
)
STEP_UP = (
    "Emergency access needs a login with a second factor: log in again with your authenticator code"
)


class SecondFactorRequired(Forbidden):
    default_detail = LOG_IN_WITH_CODE


def has_second_factor(principal: Principal) -> bool:
    return ONE_TIME_CODE in principal.amr


def second_factor_missing(principal: Principal, required_roles: Collection[str]) -> str | None:
    """Why this caller may only enrol (the 403's detail), or None when he may go on."""
    if principal.role not in required_roles:
        return None
    if not principal.mfa_enabled:
        return ENROL_FIRST
    if not has_second_factor(principal):
        return LOG_IN_WITH_CODE  # a token from before he enrolled
    return None


def refusal_event(principal: Principal) -> NewEvent:
    return audit.event_by(
        principal,
        action="mfa.required",
        resource_type="endpoint",
        outcome=audit.Outcome.DENIED,
    )


def step_up_missing(principal: Principal, required_roles: Collection[str]) -> str | None:
    """Why this caller's token may not open an emergency grant, or None when it may."""
    if has_second_factor(principal):
        return None
    if principal.mfa_enabled or principal.role in required_roles:
        return STEP_UP
    return None
