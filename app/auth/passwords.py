"""Password rules (NIST SP 800-63B): length, not the username, not a common password.

No composition rules and no truncation: every character counts (argon2id hashes the whole
password). NOTICE: common_passwords.txt is the "passwords" frequency list shipped by the
zxcvbn package (https://pypi.org/project/zxcvbn/, MIT License, Copyright (c) 2016
Daniel Wolf; the list itself comes from Dropbox's zxcvbn, MIT License).
"""

from functools import lru_cache
from importlib import resources

MIN_LENGTH = 10
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = "common_passwords.txt"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list, casefolded, read once per process."""
    content = resources.files("app.auth").joinpath(COMMON_PASSWORDS_FILE).read_text("utf-8")
    return frozenset(
        line.strip().casefold()
        for line in content.splitlines()
        if line.strip() and not line.startswith("#")
    )


def password_problem(password: str, username: str | None = None) -> str | None:
    """Why this password may not be used, or None. The message never repeats the password."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if "\x00" in password:
        return "must not contain NUL characters"
    folded = password.casefold()
    if username and folded == username.casefold():
        return "must not be the username"
    if folded in common_passwords():
        return "is too common: it appears in a list of frequently used passwords"
    return None
