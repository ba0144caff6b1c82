"""Multi-factor authentication: TOTP credentials, recovery codes, each login's methods.

`mfa_totp_credentials` holds one authenticator per user (its secret sealed with a key of
the settings, never in clear), `mfa_recovery_codes` the keyed hashes of his single-use
recovery codes. `token_families.amr` says how each login was authenticated (RFC 8176,
space-separated): existing logins were password logins, so they get `pwd`.

Downgrading drops both tables and the column: every user's MFA is gone (his logins need
the password only) and cannot be restored by upgrading again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mfa_totp_credentials",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mfa_totp_credentials_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_mfa_totp_credentials")),
    )
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mfa_recovery_codes_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_mfa_recovery_codes_code_hash")),
    )
    with op.batch_alter_table("mfa_recovery_codes") as batch:
        batch.create_index(batch.f("ix_mfa_recovery_codes_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("token_families") as batch:
        batch.add_column(
            sa.Column("amr", sa.String(length=32), server_default=sa.text("'pwd'"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("token_families") as batch:
        batch.drop_column("amr")
    with op.batch_alter_table("mfa_recovery_codes") as batch:
        batch.drop_index(batch.f("ix_mfa_recovery_codes_user_id"))
    op.drop_table("mfa_recovery_codes")
    op.drop_table("mfa_totp_credentials")
