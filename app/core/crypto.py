"""Encryption at rest and keyed hashes, from one root key. The only module that imports
`cryptography` (as core.security is for jose and passlib).

Each purpose gets its own key, derived from the root with HKDF-SHA256 (RFC 5869) and a
label naming the purpose, so that no key serves two ends and the root itself encrypts
nothing. Sealed values are AES-256-GCM: a random 96-bit nonce per value, and the context
(what the value belongs to, e.g. its user's id) authenticated with it, so that a value
copied to another row fails to open.
"""

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
# The format of a sealed value, first in its text: a later format (another key or cipher)
# is told apart from this one.
SEALED_PREFIX = "v1."


class CannotOpen(Exception):
    """A sealed value that this key did not seal, or that was altered."""


def derive_key(root: str, label: str) -> bytes:
    """The key of one purpose (`label`), from the root key."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=f"hospital-api {label}".encode(),
    ).derive(root.encode())


@dataclass(frozen=True, slots=True)
class SecretBox:
    """Seals short secrets (a TOTP secret) for storage; opens what it sealed."""

    key: bytes = field(repr=False)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, plaintext.encode(), context.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, context: str) -> str:
        if not token.startswith(SEALED_PREFIX):
            raise CannotOpen("unknown format")
        try:
            raw = base64.urlsafe_b64decode(token[len(SEALED_PREFIX) :])
            nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
            return AESGCM(self.key).decrypt(nonce, sealed, context.encode()).decode()
        except (InvalidTag, ValueError) as error:
            raise CannotOpen("not sealed by this key") from error


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of `value`, hex: for random secrets (recovery codes), which no
    dictionary holds, so a slow password hash would add cost and no strength."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
