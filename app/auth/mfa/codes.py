"""The codes of the second factor: TOTP (RFC 6238, computed by pyotp) and recovery codes.

TOTP as authenticator apps implement it: HMAC-SHA-1, 30-second steps, 6 digits. The time
is always the service's clock (core.clock), passed to pyotp as the step number, never
pyotp's own reading of the system time, so that every process and every test agrees.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from pyotp.utils import strings_equal

PERIOD_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1  # a code of the step before or after the current one is accepted too
# 32 base32 characters: a 160-bit key, the length RFC 4226 §4 recommends for HMAC-SHA-1.
SECRET_LENGTH = 32

RECOVERY_CODES = 10
# Crockford's base32: no I, L, O or U, so that a code read aloud or copied by hand survives.
RECOVERY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECOVERY_LENGTH = 16  # 80 bits
RECOVERY_GROUP = 4
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, digest=hashlib.sha1, interval=PERIOD_SECONDS)


def new_secret() -> str:
    return pyotp.random_base32(SECRET_LENGTH)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app reads (from a QR code)."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=issuer)


def step_at(now: datetime) -> int:
    return int(now.timestamp()) // PERIOD_SECONDS


def code_at(secret: str, step: int) -> str:
    return _totp(secret).generate_otp(step)


def totp_code(value: str) -> str | None:
    """The code as typed (apps show `123 456`), or None when it is not six digits."""
    code = value.replace(" ", "")
    if len(code) == DIGITS and code.isascii() and code.isdigit():
        return code
    return None


@dataclass(frozen=True, slots=True)
class TotpCheck:
    step: int | None  # the step accepted, None when the code is refused
    replayed: bool = False  # refused because its step was already used


def check_totp(secret: str, code: str, now: datetime, last_step: int | None) -> TotpCheck:
    """Whether `code` is the code of the current step or of one step either side, and of a
    step after `last_step` (a code, or an older one, is accepted only once)."""
    current = step_at(now)
    steps = range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1)
    matching = [step for step in steps if strings_equal(code, code_at(secret, step))]
    fresh = [step for step in matching if last_step is None or step > last_step]
    if fresh:
        return TotpCheck(max(fresh))
    return TotpCheck(None, replayed=bool(matching))


def new_recovery_codes() -> list[str]:
    """Ten codes as they are shown: `7K2M-9QXD-...`, four groups of four."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        groups = [raw[i : i + RECOVERY_GROUP] for i in range(0, RECOVERY_LENGTH, RECOVERY_GROUP)]
        codes.append("-".join(groups))
    return codes


def recovery_code(value: str) -> str | None:
    """A recovery code in its one stored form (upper case, no separators, look-alike
    letters read as digits), or None when it cannot be one."""
    code = value.upper().replace("-", "").replace(" ", "").translate(_LOOKALIKES)
    if len(code) == RECOVERY_LENGTH and all(char in RECOVERY_ALPHABET for char in code):
        return code
    return None
