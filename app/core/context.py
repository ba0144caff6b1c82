"""Who is asking and from where: what services need to decide and to audit."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RequestMeta:
    ip: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as the database row says now (not as the token claims)."""

    id: int
    role: str
    username: str
    full_name: str
    department_id: int | None  # a doctor's department; None for others
    token_jti: str
    token_family: str
    token_expires_at: datetime
    meta: RequestMeta
    mfa_enabled: bool  # he has a confirmed second factor (his row says, not his token)
    amr: tuple[str, ...]  # how his token's login was authenticated (RFC 8176)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
