"""The keys of the second factor, derived once at start-up from the settings."""

from dataclasses import dataclass, field

from app.core.config import Settings
from app.core.crypto import SecretBox, derive_key, keyed_hash


@dataclass(frozen=True, slots=True)
class MfaKeys:
    """`box` seals TOTP secrets; `recovery` keys the hashes of recovery codes. Both come
    from MFA_ENCRYPTION_KEY when it is set, else from the JWT signing key, each under a
    label of its own (HKDF), so neither is the signing key itself."""

    box: SecretBox
    recovery: bytes = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, signing_key: str) -> "MfaKeys":
        root = settings.mfa_encryption_key or signing_key
        return cls(
            box=SecretBox(derive_key(root, "mfa totp secret v1")),
            recovery=derive_key(root, "mfa recovery code v1"),
        )

    def seal_secret(self, secret: str, user_id: int) -> str:
        return self.box.seal(secret, _context(user_id))

    def open_secret(self, sealed: str, user_id: int) -> str:
        return self.box.open(sealed, _context(user_id))

    def recovery_hash(self, code: str) -> str:
        """The stored form of a normalised recovery code (codes.recovery_code)."""
        return keyed_hash(self.recovery, code)


def _context(user_id: int) -> str:
    # A sealed secret opens only for its own user: one copied to another row fails.
    return f"user:{user_id}"
