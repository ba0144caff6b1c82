"""Who is calling: the bearer token checked against the database, and role requirements."""

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app import transaction
from app.audit import service as audit
from app.auth import caller
from app.auth.mfa import policy as mfa_policy
from app.auth.reader import Reader
from app.core.context import Principal
from app.core.dependencies import SessionDep, request_meta
from app.core.errors import Forbidden, Unauthorized
from app.core.routing import APIRouter
from app.core.security import InvalidToken, TokenClaims, decode_token
from app.transaction import Write

TOKEN_URL = "/auth/login/"
SCHEME = "OAuth2PasswordBearer"  # the name Swagger's Authorize dialog shows
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, scheme_name=SCHEME, auto_error=False)
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


class BearerClaims(OAuth2PasswordBearer):
    """The access token's claims, if it is one of ours and unexpired: no database yet, so
    that every protected route refuses a missing or forged token before anything else.
    A security scheme itself (the docs' OAuth2 password flow), so that it costs a request
    one dependency, not two."""

    async def __call__(self, request: Request) -> TokenClaims:  # type: ignore[override]
        return access_claims(await super().__call__(request), request.app.state.signing_key)


get_claims = BearerClaims(tokenUrl=TOKEN_URL, scheme_name=SCHEME, auto_error=False)


def access_claims(token: str | None, key: str) -> TokenClaims:
    if not token:
        raise Unauthorized("Not authenticated")
    try:
        return decode_token(key, token, "access")
    except InvalidToken:
        raise Unauthorized() from None


ClaimsDep = Annotated[TokenClaims, Depends(get_claims)]


async def _caller(claims: TokenClaims, session: AsyncSession, request: Request) -> Principal:
    """A write's caller: the token checked against the database (`caller.CALLER_ROW`), in
    the write's transaction, before anything else."""
    # On the session's connection: a Core statement needs none of the ORM's machinery.
    connection = await session.connection()
    row = (await connection.execute(caller.CALLER_ROW, caller.params(claims))).one_or_none()
    return _principal(claims, row, request)


def _principal(claims: TokenClaims, row: Any, request: Request) -> Principal:
    """The caller from his `caller.CALLER_ROW` row (401 without one)."""
    if row is None:
        raise Unauthorized()
    request.state.user_id = row[0]  # for the access log line
    return caller.principal_of(row, claims, request_meta(request))


def _with_second_factor(
    unit: transaction.Unit, principal: Principal, request: Request
) -> Principal:
    """The caller, if he has the second factor his role requires (403, audited, when he
    must enrol or log in with a code first: auth.mfa.policy)."""
    required = request.app.state.settings.mfa_required_roles
    missing = mfa_policy.second_factor_missing(principal, required)
    if missing:
        transaction.pending_events(unit).append(mfa_policy.refusal_event(principal))
        raise mfa_policy.SecondFactorRequired(missing)
    return principal


# The write dependencies below each take the request and the session directly: every
# dependency costs a request FastAPI's resolution of it, as much CPU as a tenth of a read.


async def get_enrolling_principal(
    claims: ClaimsDep, session: SessionDep, request: Request
) -> Principal:
    """A write's caller, also one who must get a second factor first: only the routes that
    let him get one (and log out) take it."""
    return await _caller(claims, session, request)


EnrollingUser = Annotated[Principal, Depends(get_enrolling_principal)]


async def get_principal(claims: ClaimsDep, session: SessionDep, request: Request) -> Principal:
    """A write's caller, with the second factor his role requires."""
    return _with_second_factor(session, await _caller(claims, session, request), request)


CurrentUser = Annotated[Principal, Depends(get_principal)]


async def get_optional_principal(
    token: TokenDep, session: SessionDep, request: Request
) -> Principal | None:
    """None without a token; a token that is given must be valid (else 401)."""
    if token is None:
        return None
    claims = access_claims(token, request.app.state.signing_key)
    return _with_second_factor(session, await _caller(claims, session, request), request)


OptionalUser = Annotated[Principal | None, Depends(get_optional_principal)]


def check_role(unit: transaction.Unit, principal: Principal, roles: Collection[str]) -> Principal:
    """403 (audited) unless the caller's role, as the database has it, is one of `roles`."""
    if principal.role not in roles:
        audit.record_by(
            unit,
            principal,
            action="access.forbidden",
            resource_type="endpoint",
            outcome=audit.Outcome.DENIED,
        )
        raise Forbidden()
    return principal


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    async def check(claims: ClaimsDep, session: SessionDep, request: Request) -> Principal:
        principal = _with_second_factor(session, await _caller(claims, session, request), request)
        return check_role(session, principal, roles)

    check.__name__ = f"require_{'_or_'.join(roles)}"
    return check


def writer(*roles: str) -> Callable[[TokenClaims, Request], AsyncIterator[Write]]:
    """A domain write's transaction (`transaction.write_unit`), its caller checked in it
    first: one of `roles`, with the second factor his role requires."""

    async def write(claims: ClaimsDep, request: Request) -> AsyncIterator[Write]:
        async with transaction.write_unit(request.app.state) as unit:
            row = await unit.one(caller.CALLER_ROW, caller.params(claims))
            principal = _with_second_factor(unit, _principal(claims, row, request), request)
            unit.caller = check_role(unit, principal, roles)
            yield unit

    write.__name__ = f"{'_or_'.join(roles)}_write"
    return write


# scope="function": the transaction ends (commit or rollback) before the response is sent.
AdminWrite = Annotated[Write, Depends(writer("admin"), scope="function")]
DoctorWrite = Annotated[Write, Depends(writer("doctor"), scope="function")]

RequireAdmin = Annotated[Principal, Depends(require_role("admin"))]


def reader_of(request: Request, *, enrolling: bool = False) -> Reader:
    """The read request (auth.reader) of a GET route. Its token was verified by the route's
    `get_claims` dependency (the decoding is cached), and is checked against the database
    by the read's own statement. A plain call rather than a dependency: each dependency
    costs FastAPI's resolution as much CPU as a tenth of a read. `enrolling`: the route is
    open to a caller who must get a second factor first (auth.mfa.policy)."""
    state = request.app.state
    return Reader(
        claims=access_claims(_bearer_token(request), state.signing_key),
        meta=request_meta(request),
        binds=transaction.read_binds(state),
        batcher=state.audit_batcher,
        mfa_required_roles=state.settings.mfa_required_roles,
        state=request.scope["state"],
        enrolling=enrolling,
    )


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def protected_router(tag: str) -> APIRouter:
    """A domain's router under /api: every route refuses a missing or forged token first."""
    return APIRouter(prefix="/api", tags=[tag], dependencies=[Depends(get_claims)])
