"""Password rules (NIST SP 800-63B): length, not the username, not a common password, not
repetitive or sequential characters.

No composition rules and no truncation: every character counts (argon2id hashes the whole
password). NOTICE: common_passwords.txt is the "passwords" frequency list shipped by the
zxcvbn package (https://pypi.org/project/zxcvbn/, MIT License, Copyright (c) 2016
Daniel Wolf; the list itself comes from Dropbox's zxcvbn, MIT License).
"""

import unicodedata
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
        _fold(line.strip())
        for line in content.splitlines()
        if line.strip() and not line.startswith("#")
    )


def _fold(text: str) -> str:
    """Compatibility-normalised and casefolded: 'ＡＡＡ' is 'aaa', 'Abc' is 'abc'."""
    return unicodedata.normalize("NFKC", text).casefold()


def _repetitive(folded: str) -> bool:
    """Fewer than three different characters ('aaaaaaaaaa', ten spaces, 'abababbbab'), or
    one group repeated through the whole password ('abcabcabca', 'tomtomtomtom')."""
    if len(set(folded)) < 3:
        return True
    length = len(folded)
    return any(
        all(folded[i] == folded[i - period] for i in range(period, length))
        for period in range(1, length // 2 + 1)
    )


def _step(before: str, after: str) -> int:
    """Code point distance; the digits wrap around ('9' then '0' is one step up)."""
    if before.isdigit() and after.isdigit() and {before, after} == {"0", "9"}:
        return 1 if before == "9" else -1
    return ord(after) - ord(before)


def _sequential(folded: str) -> bool:
    """At most two runs of characters each one step up, down or the same as the one before
    ('abcdefghij', '1234567890', '9876543210', '1234abcdef', 'aaaaabbbbb')."""
    jumps = sum(abs(_step(a, b)) > 1 for a, b in zip(folded, folded[1:], strict=False))
    return jumps <= 1


def password_problem(password: str, username: str | None = None) -> str | None:
    """Why this password may not be used, or None. The message never repeats the password."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if "\x00" in password:
        return "must not contain NUL characters"
    folded = _fold(password)
    if username and folded == _fold(username):
        return "must not be the username"
    if folded in common_passwords():
        return "is too common: it appears in a list of frequently used passwords"
    if _repetitive(folded):
        return "must not repeat one character or one group of characters"
    if _sequential(folded):
        return "must not be a sequence of consecutive characters (like 'abcd' or '1234')"
    return None
