"""A user's second factor: his TOTP credential and his recovery codes."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigId, utcnow


class TotpCredential(Base):
    """One authenticator app per user: enrolled (`confirmed_at` NULL) until a first code
    confirms it, then active: from then on his logins need a code."""

    __tablename__ = "mfa_totp_credentials"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    # Sealed (core.crypto, bound to the user's id): never the secret itself.
    secret: Mapped[str] = mapped_column(String(255))
    confirmed_at: Mapped[datetime | None]
    # The time step of the last code accepted: a code of that step or an earlier one is
    # refused, in every process (RFC 6238 §5.2).
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    """A single-use code for a login without the authenticator, stored as a keyed hash."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
