"""Who is calling: the bearer token checked against the database, and role requirements."""

from collections.abc import Awaitable, Callable, Collection
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app import transaction
from app.audit import service as audit
from app.auth import caller
from app.auth.reader import Reader
from app.core.context import Principal
from app.core.dependencies import MetaDep, SessionDep, SigningKeyDep
from app.core.errors import Forbidden, Unauthorized
from app.core.security import InvalidToken, TokenClaims, decode_token

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login/", auto_error=False)
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


async def get_claims(token: TokenDep, request: Request) -> TokenClaims:
    """The access token's claims, if it is one of ours and unexpired: no database yet, so
    that every protected route refuses a missing or forged token before anything else."""
    return access_claims(token, request.app.state.signing_key)


def access_claims(token: str | None, key: str) -> TokenClaims:
    if not token:
        raise Unauthorized("Not authenticated")
    try:
        return decode_token(key, token, "access")
    except InvalidToken:
        raise Unauthorized() from None


ClaimsDep = Annotated[TokenClaims, Depends(get_claims)]


async def get_principal(
    claims: ClaimsDep, session: SessionDep, meta: MetaDep, request: Request
) -> Principal:
    """A write's caller: the token checked against the database (`caller.CALLER_ROW`), in
    the write's transaction, before anything else."""
    row = (await session.execute(caller.CALLER_ROW, caller.params(claims))).one_or_none()
    if row is None:
        raise Unauthorized()
    request.state.user_id = row.caller_id  # for the access log line
    return Principal(
        id=row.caller_id,
        role=row.caller_role,
        username=row.caller_username,
        full_name=row.caller_full_name,
        department_id=row.caller_department_id,
        token_jti=claims.jti,
        token_family=claims.family,
        token_expires_at=claims.expires_at,
        meta=meta,
    )


CurrentUser = Annotated[Principal, Depends(get_principal)]


async def get_optional_principal(
    token: TokenDep, session: SessionDep, key: SigningKeyDep, meta: MetaDep, request: Request
) -> Principal | None:
    """None without a token; a token that is given must be valid (else 401)."""
    if token is None:
        return None
    return await get_principal(access_claims(token, key), session, meta, request)


OptionalUser = Annotated[Principal | None, Depends(get_optional_principal)]


def check_role(session: AsyncSession, principal: Principal, roles: Collection[str]) -> Principal:
    """403 (audited) unless the caller's role, as the database has it, is one of `roles`."""
    if principal.role not in roles:
        audit.record_by(
            session,
            principal,
            action="access.forbidden",
            resource_type="endpoint",
            outcome=audit.Outcome.DENIED,
        )
        raise Forbidden()
    return principal


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: CurrentUser, session: SessionDep) -> Principal:
        return check_role(session, principal, roles)

    check.__name__ = f"require_{'_or_'.join(roles)}"
    return check


RequireAdmin = Annotated[Principal, Depends(require_role("admin"))]
RequireDoctor = Annotated[Principal, Depends(require_role("doctor"))]
RequireDoctorOrPatient = Annotated[Principal, Depends(require_role("doctor", "patient"))]
RequireAdminOrDoctor = Annotated[Principal, Depends(require_role("admin", "doctor"))]


async def get_reader(claims: ClaimsDep, meta: MetaDep, request: Request) -> Reader:
    """A read request (auth.reader): the token is checked by the read's own statement."""
    state = request.app.state
    return Reader(
        claims=claims,
        meta=meta,
        binds=transaction.read_binds(state),
        batcher=state.audit_batcher,
        state=request.scope.setdefault("state", {}),
    )


ReaderDep = Annotated[Reader, Depends(get_reader)]
