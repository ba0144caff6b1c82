"""The rules of authentication: who may register whom, login with lock-out, rotation,
revocation and password change. Every outcome is audited; no secret is ever recorded."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.service import Outcome
from app.auth import lockout, repository
from app.auth.lockout import audit_attempt
from app.auth.mfa import repository as mfa_repository
from app.auth.models import LoginFailure
from app.auth.passwords import password_problem
from app.auth.reader import Reader
from app.auth.schemas import RegisterRequest
from app.auth.tokens import TokenPair, issue_login, mfa_token, rotate
from app.core.config import Settings
from app.core.context import Principal, RequestMeta
from app.core.db import utcnow
from app.core.errors import (
    Conflict,
    Forbidden,
    IncorrectPassword,
    InvalidInput,
    MfaRequired,
    Unauthorized,
)
from app.core.observability import LOGIN_FAILURES
from app.core.security import (
    InvalidToken,
    decode_token,
    hash_password,
    issued_before,
    verify_password,
)
from app.users import repository as users_repository
from app.users.models import DoctorProfile, PatientProfile, Role, User, casefold_key

BAD_CREDENTIALS = "Incorrect username or password"
DOCTOR_FIELDS = ("department_id", "specialization", "license_number")
PATIENT_FIELDS = ("date_of_birth", "sex", "phone")


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)


# --- registration -------------------------------------------------------------------------


async def register(
    session: AsyncSession, meta: RequestMeta, caller: Principal | None, data: RegisterRequest
) -> User:
    """Anyone may register a patient; only an admin may register doctors and admins."""
    role = Role(data.role)
    if role != Role.PATIENT and not (caller and caller.is_admin):
        audit.record(
            session,
            meta=meta,
            actor=caller,
            action="auth.register",
            resource_type="user",
            outcome=Outcome.DENIED,
        )
        raise Forbidden("Only an admin may register doctors and admins")
    allowed = {Role.DOCTOR: DOCTOR_FIELDS, Role.PATIENT: PATIENT_FIELDS}.get(role, ())
    for name in (*DOCTOR_FIELDS, *PATIENT_FIELDS):
        if name not in allowed and getattr(data, name) is not None:
            raise InvalidInput(("body", name), f"not accepted for role {role.value}")
    if data.department_id is not None and not await users_repository.department_exists(
        session, data.department_id
    ):
        raise InvalidInput(("body", "department_id"), "department does not exist")
    taken = await repository.taken_fields(session, data.username, data.email)
    if taken:
        raise Conflict(f"{' and '.join(taken).capitalize()} already registered")

    user = User(
        username=data.username,
        email=data.email,
        full_name=data.full_name,
        password_hash=await hash_password(data.password),
        role=role.value,
        is_active=True,
    )
    profile: DoctorProfile | PatientProfile | None = None
    if role == Role.DOCTOR:
        profile = DoctorProfile(
            department_id=data.department_id,
            specialization=data.specialization,
            license_number=data.license_number,
        )
    elif role == Role.PATIENT:
        profile = PatientProfile(
            date_of_birth=data.date_of_birth,
            sex=data.sex.value if data.sex else None,
            phone=data.phone,
        )
    try:
        # A concurrent registration of the same name passes the check above; the unique
        # constraint decides, and the loser answers 409.
        await repository.add_user(session, user, profile)
    except IntegrityError:
        raise Conflict("Username or email already registered") from None
    audit.record(
        session,
        meta=meta,
        actor=caller,
        actor_id=None if caller else user.id,
        action="auth.register",
        resource_type="user",
        resource_id=user.id,
        patient_id=user.id if role == Role.PATIENT else None,
    )
    return user


# --- login and lock-out (auth.lockout) ----------------------------------------------------


async def login(
    session: AsyncSession, key: str, settings: Settings, meta: RequestMeta, creds: Credentials
) -> TokenPair:
    """Unknown user, wrong password and inactive user are one answer, in about one time.

    The password is checked before the counter is locked, with no database connection
    held: argon2 takes tens of milliseconds, and a storm of logins must hold neither the
    pool nor the counter's row lock meanwhile. The decision is then taken in turn, under
    the lock, on the counter and the user as they are at that moment.
    """
    username_key = casefold_key(creds.username)
    checked: tuple[str | None, tuple[bool, str | None]] | None = None
    counter = await repository.login_failures(session, username_key)
    if counter is None or lockout.locked_for(counter, settings, utcnow()) is None:
        user = await repository.user_by_username(session, creds.username)
        stored_hash = user.password_hash if user else None
        await session.commit()  # ends the read: the connection goes back to the pool
        checked = (stored_hash, await verify_password(creds.password, stored_hash))

    now = utcnow()
    # The counter is locked first, so concurrent attempts on one username decide in turn.
    counter = await repository.lock_login_failures(session, username_key)
    user = await repository.user_by_username(session, creds.username)
    lockout.refuse_if_locked(session, meta, settings, counter, user.id if user else None, now)
    stored_hash = user.password_hash if user else None
    if checked is None or checked[0] != stored_hash:  # was locked, or the password changed
        checked = (stored_hash, await verify_password(creds.password, stored_hash))
    ok, new_hash = checked[1]
    if user is None or not ok or not user.is_active:
        lockout.count_failure(counter, settings, now)
        audit_attempt(session, meta, user.id if user else None, "auth.login", Outcome.FAILED)
        LOGIN_FAILURES.inc()
        raise Unauthorized(BAD_CREDENTIALS)

    if new_hash:
        user.password_hash = new_hash
    if await mfa_repository.has_confirmed_totp(session, user.id):
        # Half a login: the count is not cleared, or a known password would reset it before
        # each round of guessed codes. The refusal commits the event (app.transaction).
        token = mfa_token(key, settings, user_id=user.id, role=user.role)
        audit_attempt(session, meta, user.id, "mfa.challenge")
        raise MfaRequired(token.token)
    lockout.clear(counter, now)
    pair = await issue_login(
        session,
        key,
        settings,
        user_id=user.id,
        role=user.role,
        valid_after=user.tokens_valid_after,
    )
    audit_attempt(session, meta, user.id, "auth.login")
    return pair


# --- refresh and logout -------------------------------------------------------------------


async def refresh(
    session: AsyncSession, key: str, settings: Settings, meta: RequestMeta, token: str
) -> TokenPair:
    """Rotate: the family accepts one refresh token at a time; a used one revokes it all."""
    try:
        claims = decode_token(key, token, "refresh")
    except InvalidToken:
        raise Unauthorized() from None
    now = utcnow()
    family = await repository.lock_family(session, claims.family)
    if family is None or family.user_id != claims.user_id:
        raise Unauthorized()
    owner_id = family.user_id

    def refuse(action: str, outcome: Outcome) -> Unauthorized:
        audit_attempt(session, meta, owner_id, action, outcome)
        return Unauthorized()

    if family.revoked_at is not None or family.expires_at <= now:
        raise refuse("auth.refresh", Outcome.FAILED)
    if family.current_refresh_jti != claims.jti:
        # Someone holds an already used refresh token: a copy leaked. End the whole login.
        family.revoked_at = now
        raise refuse("auth.refresh_reuse", Outcome.DENIED)
    # Read, not locked: a password change locks the user, then the families (lock order).
    user = await repository.get_user(session, family.user_id)
    if user is None or not user.is_active or issued_before(claims, user.tokens_valid_after):
        raise refuse("auth.refresh", Outcome.FAILED)
    pair = rotate(key, settings, family, user.role, user.tokens_valid_after)  # the row's role
    audit_attempt(session, meta, user.id, "auth.refresh")
    return pair


async def logout(session: AsyncSession, principal: Principal) -> None:
    """Refuse the presented access token and every token of its login, in every process."""
    await repository.revoke_token(session, principal.token_jti, principal.token_expires_at)
    await repository.revoke_family(session, principal.token_family, utcnow())
    audit.record_by(
        session,
        principal,
        action="auth.logout",
        resource_type="user",
        resource_id=principal.id,
    )


# --- the caller's account -----------------------------------------------------------------


async def me(reader: Reader) -> dict[str, Any]:
    scoped = await reader.read(repository.ME)
    caller = scoped.caller
    email, is_active, created_at = scoped.data(scoped.rows[0])
    return {
        "id": caller.id,
        "username": caller.username,
        "email": email,
        "full_name": caller.full_name,
        "role": caller.role,
        "is_active": is_active,
        "created_at": created_at,
    }


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The current password checked, and the rows it was decided on, still locked."""

    ok: bool
    counter: LoginFailure
    user: User
    prepared: Any = None  # what `on_match` made


async def check_current_password(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    password: str,
    on_match: Callable[[], Awaitable[Any]] | None = None,
) -> PasswordCheck:
    """The caller's current password, checked as at login: argon2 first with no database
    connection held (then `on_match`, e.g. hashing a new password, when it matched), and the
    decision afterwards under the lock-out counter's and the user's row locks. A locked
    username is refused (429) without checking anything. The caller counts a wrong one."""
    username_key = casefold_key(principal.username)
    checked: tuple[str | None, bool] | None = None
    prepared: Any = None
    counter = await repository.login_failures(session, username_key)
    if counter is None or lockout.locked_for(counter, settings, utcnow()) is None:
        user = await repository.get_user(session, principal.id)
        stored_hash = user.password_hash if user else None
        await session.commit()  # ends the read: the connection goes back to the pool
        ok, _ = await verify_password(password, stored_hash)
        checked = (stored_hash, ok)
        if ok and on_match is not None:
            prepared = await on_match()

    now = utcnow()
    counter = await repository.lock_login_failures(session, username_key)
    locked_user = await repository.lock_user(session, principal.id)
    if locked_user is None:
        raise Unauthorized()
    lockout.refuse_if_locked(session, principal.meta, settings, counter, locked_user.id, now)
    if checked is None or checked[0] != locked_user.password_hash:  # was locked, or changed
        ok, _ = await verify_password(password, locked_user.password_hash)
        checked, prepared = (locked_user.password_hash, ok), None
    return PasswordCheck(checked[1], counter, locked_user, prepared)


async def change_password(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    current_password: str,
    new_password: str,
) -> None:
    """New hash, and every token issued before now is refused (all logins revoked).

    A wrong current password counts toward the username's lock-out, like a failed login,
    so a stolen access token cannot be used to guess the password.
    """
    problem = password_problem(new_password, principal.username)
    if problem:
        raise InvalidInput(("body", "new_password"), problem)
    check = await check_current_password(
        session, settings, principal, current_password, lambda: hash_password(new_password)
    )
    now = utcnow()
    user = check.user
    if not check.ok:
        lockout.count_failure(check.counter, settings, now)
        audit.record_by(
            session,
            principal,
            action="auth.password_change",
            resource_type="user",
            resource_id=user.id,
            outcome=Outcome.FAILED,
        )
        raise IncorrectPassword(("body", "current_password"), "is incorrect")

    lockout.clear(check.counter, now)
    user.password_hash = check.prepared or await hash_password(new_password)
    user.tokens_valid_after = now
    await repository.revoke_user_families(session, user.id, now)
    audit.record_by(
        session,
        principal,
        action="auth.password_change",
        resource_type="user",
        resource_id=user.id,
    )
