"""Token revocation state and login throttling, kept in the database so every process agrees."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigId, utcnow


class TokenFamily(Base):
    """One login: every access and refresh token issued from it shares its id (`fam`)."""

    __tablename__ = "token_families"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    # The one refresh token of this login that may still be used (rotation).
    current_refresh_jti: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]
    # How the login was authenticated (RFC 8176 methods, space-separated): every token of
    # the family carries it, so a refresh neither gains nor loses a factor.
    amr: Mapped[str] = mapped_column(String(32), server_default=text("'pwd'"))


class RevokedToken(Base):
    """A token id that may no longer be used, never the token: a revoked access token, or
    a spent MFA token (single use). Kept until the token would expire anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginFailure(Base):
    """Failed logins of one username in the current window (the lock-out counter)."""

    __tablename__ = "login_failures"

    username_key: Mapped[str] = mapped_column(String(150), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
