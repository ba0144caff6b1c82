"""The rules of the second factor: enrolment, the login's second step, removal, the admins'
reset. Every event is audited; no secret, code or token is ever recorded or logged.

A code is accepted once: the TOTP credential's row is locked while a code is checked, and
the step of the code accepted is written before the lock is released, so a replay (in any
process) finds it spent. Wrong codes at the login's second step, or at removal, count
toward the same lock-out as wrong passwords (auth.lockout).
"""

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.service import Outcome
from app.auth import lockout
from app.auth import repository as auth_repository
from app.auth import service as auth_service
from app.auth.lockout import audit_attempt
from app.auth.mfa import codes, repository
from app.auth.mfa.keys import MfaKeys
from app.auth.mfa.models import TotpCredential
from app.auth.tokens import TokenPair, issue_login
from app.core.config import Settings
from app.core.context import Principal, RequestMeta
from app.core.crypto import CannotOpen
from app.core.db import utcnow
from app.core.errors import (
    AppError,
    Conflict,
    IncorrectCode,
    IncorrectPassword,
    NotFound,
    Unauthorized,
)
from app.core.observability import LOGIN_FAILURES
from app.core.security import (
    ONE_TIME_CODE,
    PASSWORD,
    InvalidToken,
    decode_token,
    issued_before,
)
from app.users.models import casefold_key

logger = logging.getLogger("app.mfa")

ALREADY_ENROLLED = "Multi-factor authentication is already enabled: remove it first"
NOTHING_TO_CONFIRM = "No authenticator to confirm: enrol with POST /auth/mfa/totp/ first"
NOT_ENROLLED = "Multi-factor authentication is not enabled"
BAD_MFA_TOKEN = "Invalid, expired or used MFA token: log in again"
BAD_CODE = "Invalid code: log in again"


class SecondFactorUnavailable(AppError):
    """A stored secret this service cannot open: its key changed (an operator's error)."""

    status_code = 500
    default_detail = "The second factor cannot be checked: an administrator must reset it"


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    otpauth_uri: str


# --- enrolment ------------------------------------------------------------------------------


async def enrol(
    session: AsyncSession, keys: MfaKeys, settings: Settings, principal: Principal
) -> Enrolment:
    """A new secret for the caller's authenticator, shown this once. Until a code confirms
    it nothing changes for his logins; enrolling again replaces an unconfirmed secret."""
    credential = await repository.lock_totp(session, principal.id)
    if credential is not None and credential.confirmed_at is not None:
        raise Conflict(ALREADY_ENROLLED)
    secret = codes.new_secret()
    sealed = keys.seal_secret(secret, principal.id)
    now = utcnow()
    if credential is None:
        await repository.add_totp(
            session, TotpCredential(user_id=principal.id, secret=sealed, created_at=now)
        )
    else:
        credential.secret, credential.last_step, credential.created_at = sealed, None, now
    _record(session, principal, "mfa.enrol")
    uri = codes.provisioning_uri(secret, principal.username, settings.mfa_issuer)
    return Enrolment(secret, uri)


async def confirm(
    session: AsyncSession, keys: MfaKeys, principal: Principal, code: str
) -> list[str]:
    """A first code from the authenticator turns MFA on; the answer is the ten recovery
    codes, shown this once (only their keyed hashes are kept)."""
    credential = await repository.lock_totp(session, principal.id)
    if credential is None:
        raise Conflict(NOTHING_TO_CONFIRM)
    if credential.confirmed_at is not None:
        raise Conflict(ALREADY_ENROLLED)
    now = utcnow()
    typed = codes.totp_code(code)
    check = codes.check_totp(_secret(keys, credential), typed, now, None) if typed else None
    if check is None or check.step is None:
        _record(session, principal, "mfa.confirm", Outcome.FAILED)
        raise IncorrectCode(("body", "code"), "is incorrect")
    credential.confirmed_at, credential.last_step = now, check.step
    shown = codes.new_recovery_codes()
    hashes = [keys.recovery_hash(_normalised(code)) for code in shown]
    await repository.replace_recovery_codes(session, principal.id, hashes, now)
    _record(session, principal, "mfa.confirm")
    return shown


async def remove(
    session: AsyncSession,
    keys: MfaKeys,
    settings: Settings,
    principal: Principal,
    password: str,
    code: str,
) -> None:
    """Turn MFA off: the current password and a code (or a recovery code) are both
    needed; a wrong one counts toward the lock-out like a failed login."""
    check = await auth_service.check_current_password(session, settings, principal, password)
    now = utcnow()
    credential = await repository.lock_totp(session, principal.id)
    if credential is None or credential.confirmed_at is None:
        raise Conflict(NOT_ENROLLED)
    if not check.ok:
        lockout.count_failure(check.counter, settings, now)
        _record(session, principal, "mfa.remove", Outcome.FAILED)
        raise IncorrectPassword(("body", "current_password"), "is incorrect")
    if await _accept(session, keys, credential, code) is None:
        lockout.count_failure(check.counter, settings, now)
        _record(session, principal, "mfa.remove", Outcome.FAILED)
        raise IncorrectCode(("body", "code"), "is incorrect")
    lockout.clear(check.counter, now)
    await repository.remove_factor(session, principal.id)
    _record(session, principal, "mfa.remove")


# --- the login's second step ------------------------------------------------------------------


async def verify(
    session: AsyncSession,
    key: str,
    keys: MfaKeys,
    settings: Settings,
    meta: RequestMeta,
    mfa_token: str,
    code: str,
) -> TokenPair:
    """The MFA token of a right password and a code → the login's token pair, with
    `amr: ["pwd", "otp"]`. The token is spent by this attempt, whatever its outcome."""
    try:
        claims = decode_token(key, mfa_token, "mfa")
    except InvalidToken:
        raise Unauthorized(BAD_MFA_TOKEN) from None
    if not await repository.spend_token(session, claims.jti, claims.expires_at):
        audit_attempt(session, meta, claims.user_id, "mfa.verify", Outcome.DENIED)
        raise Unauthorized(BAD_MFA_TOKEN)
    user = await auth_repository.get_user(session, claims.user_id)
    if user is None:
        raise Unauthorized(BAD_MFA_TOKEN)
    now = utcnow()
    # As at login: the counter first (concurrent attempts decide in turn), then the user
    # as he is once it is ours.
    counter = await auth_repository.lock_login_failures(session, casefold_key(user.username))
    user = await auth_repository.get_user(session, claims.user_id)
    assert user is not None  # users are never deleted
    lockout.refuse_if_locked(session, meta, settings, counter, user.id, now)
    credential = await repository.lock_totp(session, user.id)
    if (
        not user.is_active
        or issued_before(claims, user.tokens_valid_after)
        or credential is None
        or credential.confirmed_at is None  # removed or reset since the password step
    ):
        audit_attempt(session, meta, user.id, "mfa.verify", Outcome.FAILED)
        raise Unauthorized(BAD_MFA_TOKEN)

    method = await _accept(session, keys, credential, code)
    if method is None:
        lockout.count_failure(counter, settings, now)
        LOGIN_FAILURES.inc()
        audit_attempt(session, meta, user.id, "mfa.verify", Outcome.FAILED)
        raise Unauthorized(BAD_CODE)
    lockout.clear(counter, now)
    pair = await issue_login(
        session,
        key,
        settings,
        user_id=user.id,
        role=user.role,
        valid_after=user.tokens_valid_after,
        amr=(PASSWORD, ONE_TIME_CODE),
    )
    audit_attempt(session, meta, user.id, method)
    audit_attempt(session, meta, user.id, "auth.login")
    return pair


# --- the admins' reset ----------------------------------------------------------------------


async def reset(session: AsyncSession, admin: Principal, user_id: int) -> None:
    """An admin removes a user's second factor (a lost phone). Every login of the user ends
    too: whoever holds the device may hold a session. Resetting a user without MFA changes
    nothing (and is recorded all the same)."""
    user = await auth_repository.lock_user(session, user_id)
    if user is None:
        raise NotFound("User not found")
    if await repository.remove_factor(session, user.id):
        now = utcnow()
        user.tokens_valid_after = now
        await auth_repository.revoke_user_families(session, user.id, now)
    audit.record_by(session, admin, action="mfa.reset", resource_type="user", resource_id=user.id)


# --- codes ----------------------------------------------------------------------------------


async def _accept(
    session: AsyncSession, keys: MfaKeys, credential: TotpCredential, code: str
) -> str | None:
    """The audit action of the code accepted (`mfa.verify` for a TOTP code, or
    `mfa.recovery_code_used`), spending it; None when it is refused (wrong, or already
    used). The credential's row is locked by the caller."""
    now = utcnow()
    typed = codes.totp_code(code)
    if typed is not None:
        check = codes.check_totp(_secret(keys, credential), typed, now, credential.last_step)
        if check.step is None:
            return None
        credential.last_step = check.step
        return "mfa.verify"
    recovery = codes.recovery_code(code)
    if recovery is not None and await repository.use_recovery_code(
        session, credential.user_id, keys.recovery_hash(recovery), now
    ):
        return "mfa.recovery_code_used"
    return None


def _secret(keys: MfaKeys, credential: TotpCredential) -> str:
    try:
        return keys.open_secret(credential.secret, credential.user_id)
    except CannotOpen:
        logger.error(
            "the TOTP secret of user %s cannot be opened: MFA_ENCRYPTION_KEY (or SECRET_KEY, "
            "when it is unset) changed since it was sealed; an admin reset re-enrols him",
            credential.user_id,
        )
        raise SecondFactorUnavailable() from None


def _normalised(code: str) -> str:
    form = codes.recovery_code(code)
    assert form is not None  # made by codes.new_recovery_codes
    return form


def _record(
    session: AsyncSession, principal: Principal, action: str, outcome: Outcome = Outcome.ALLOWED
) -> None:
    audit.record_by(
        session,
        principal,
        action=action,
        resource_type="user",
        resource_id=principal.id,
        outcome=outcome,
    )
