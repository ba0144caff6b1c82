"""Who is calling: the bearer token checked against the database, and role requirements."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.audit import service as audit
from app.auth import repository
from app.core.context import Principal
from app.core.dependencies import MetaDep, SessionDep, SigningKeyDep
from app.core.errors import Forbidden, Unauthorized
from app.core.security import InvalidToken, decode_token

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login/", auto_error=False)
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


async def get_principal(
    token: TokenDep, session: SessionDep, key: SigningKeyDep, meta: MetaDep, request: Request
) -> Principal:
    """Trust a token only if the database agrees now: user active, token and login not revoked.

    The role comes from the user row, never from the token's `role` claim.
    """
    if not token:
        raise Unauthorized("Not authenticated")
    try:
        claims = decode_token(key, token, "access")
    except InvalidToken:
        raise Unauthorized() from None
    owner = await repository.token_owner(session, claims)
    if (
        owner is None
        or not owner.is_active
        or owner.token_revoked
        or not owner.family_active
        or claims.issued_at < owner.tokens_valid_after.replace(microsecond=0)
    ):
        raise Unauthorized()
    request.state.user_id = owner.id  # for the access log line
    return Principal(
        id=owner.id,
        role=owner.role,
        username=owner.username,
        full_name=owner.full_name,
        department_id=owner.department_id,
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
    return await get_principal(token, session, key, meta, request)


OptionalUser = Annotated[Principal | None, Depends(get_optional_principal)]


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: CurrentUser, session: SessionDep) -> Principal:
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

    check.__name__ = f"require_{'_or_'.join(roles)}"
    return check


RequireAdmin = Annotated[Principal, Depends(require_role("admin"))]
RequireDoctor = Annotated[Principal, Depends(require_role("doctor"))]
RequirePatient = Annotated[Principal, Depends(require_role("patient"))]
RequireDoctorOrPatient = Annotated[Principal, Depends(require_role("doctor", "patient"))]
RequireAdminOrDoctor = Annotated[Principal, Depends(require_role("admin", "doctor"))]
