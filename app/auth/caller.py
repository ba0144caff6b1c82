"""The caller as the database has him now: the one check of a bearer token against the
database, written once in SQLAlchemy Core and used by every route.

A token's signature and expiry are checked without the database (`auth.dependencies`);
then the token's user must exist and be active, the token must not predate his
`tokens_valid_after` (a password change, a deactivation), its `jti` must not be revoked
(logout) and its login (`fam`) must be open. The role and department come from his row,
never from the token's claims, and so does whether he has a second factor (auth.mfa.policy
decides what follows from it).

Reads join this row to the statement that reads their data (`scoped`): one round trip
answers who is asking and what he may see. Writes run it alone, first, in their
transaction (`repository.caller`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    String,
    bindparam,
    exists,
    literal_column,
    select,
    true,
)

from app.auth.mfa.models import TotpCredential
from app.auth.models import RevokedToken, TokenFamily
from app.core.context import Principal, RequestMeta
from app.core.db import AnyCompound, AnySelect
from app.core.security import TokenClaims
from app.users.models import DoctorProfile, Role, User

# The caller's own columns, first in every scoped row, in this order.
CALLER_COLUMNS = (
    "caller_id",
    "caller_role",
    "caller_username",
    "caller_full_name",
    "caller_department_id",
    "caller_mfa",
)

CALLER_ROW = (
    select(
        User.id.label("caller_id"),
        User.role.label("caller_role"),
        User.username.label("caller_username"),
        User.full_name.label("caller_full_name"),
        DoctorProfile.department_id.label("caller_department_id"),
        # One primary-key probe: whether he has a confirmed authenticator.
        exists()
        .where(TotpCredential.user_id == User.id, TotpCredential.confirmed_at.is_not(None))
        .label("caller_mfa"),
    )
    .outerjoin(DoctorProfile, DoctorProfile.user_id == User.id)
    .where(
        User.id == bindparam("caller_id"),
        User.is_active.is_(True),
        User.tokens_valid_after <= bindparam("caller_issued_at"),
        ~exists().where(RevokedToken.jti == bindparam("caller_jti", type_=String)),
        exists().where(
            TokenFamily.id == bindparam("caller_family", type_=String),
            # By the login's key alone (`+ 0` leaves the users' index aside): a plan that
            # looked the family up by its user would read every login he has kept.
            TokenFamily.user_id + literal_column("0") == User.id,
            TokenFamily.revoked_at.is_(None),
        ),
    )
)
CALLER = CALLER_ROW.cte("caller")


def principal_of(row: Sequence[Any], claims: TokenClaims, meta: RequestMeta) -> Principal:
    """The caller from the first columns of a row (CALLER_COLUMNS' order), with what his
    token says of the login."""
    return Principal(
        id=row[0],
        role=row[1],
        username=row[2],
        full_name=row[3],
        department_id=row[4],
        token_jti=claims.jti,
        token_family=claims.family,
        token_expires_at=claims.expires_at,
        meta=meta,
        mfa_enabled=bool(row[5]),
        amr=claims.amr,
    )


def params(claims: TokenClaims) -> dict[str, Any]:
    """The values CALLER_ROW binds, from a verified token."""
    return {
        "caller_id": claims.user_id,
        "caller_jti": claims.jti,
        "caller_family": claims.family,
        "caller_issued_at": claims.issued_at,
    }


def _of_caller(column: ColumnElement[Any], *where: ColumnElement[bool]) -> ScalarSelect[Any]:
    return select(column).where(*where).correlate(None).scalar_subquery()


@dataclass(frozen=True)
class CallerRef:
    """The caller's row as SQL values, for the policies: each is NULL when it does not
    apply (a patient has no `doctor_id`), so a comparison with it is never true."""

    id: ColumnElement[Any]
    role: ColumnElement[Any]
    doctor_id: ColumnElement[Any]
    doctor_department_id: ColumnElement[Any]
    patient_id: ColumnElement[Any]

    def has_role(self, *roles: str) -> ColumnElement[bool]:
        # The roles written into the SQL: an IN list of bound values would be expanded
        # into the statement at every execution.
        return self.role.in_([literal_column(f"'{Role(role).value}'") for role in roles])


def _caller_ref() -> CallerRef:
    is_doctor = CALLER.c.caller_role == Role.DOCTOR.value
    is_patient = CALLER.c.caller_role == Role.PATIENT.value
    return CallerRef(
        id=_of_caller(CALLER.c.caller_id),
        role=_of_caller(CALLER.c.caller_role),
        doctor_id=_of_caller(CALLER.c.caller_id, is_doctor),
        doctor_department_id=_of_caller(CALLER.c.caller_department_id, is_doctor),
        patient_id=_of_caller(CALLER.c.caller_id, is_patient),
    )


# The caller of a scoped statement, as the policies see him.
TOKEN_CALLER = _caller_ref()


def scoped(data: AnySelect | AnyCompound) -> AnySelect:
    """The caller's row joined to `data` (which reads through TOKEN_CALLER): no row at all
    when the database refuses the token, else one row per data row, or a single row
    whose data columns are all NULL when there is none."""
    found = data.subquery("data")
    return select(CALLER, *found.c).select_from(CALLER).outerjoin(found, true())
