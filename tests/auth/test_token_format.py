"""One spelling per token and strict claims: every other text or claim is a 401.

A token signed with the right key is still refused when it is not the canonical compact
JWS (three base64url segments, no padding, nothing else) or when its claims are not
written the one way the service writes them.
"""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import TokenFamily
from app.core.config import Settings
from tests.auth.conftest import assert_unauthorized, bearer, claims_of, sign
from tests.factories import Tokens, create_patient, tokens_for

UNAUTHORIZED_BODY = {"detail": "Could not validate credentials"}


async def patient_tokens(db: AsyncSession, settings: Settings) -> Tokens:
    return await tokens_for(db, settings, await create_patient(db))


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/auth/me", headers=bearer(token))


def refused(response: httpx.Response) -> None:
    assert_unauthorized(response)
    assert response.json() == UNAUTHORIZED_BODY


def _flip_last_bits(segment: str) -> str:
    """The same bytes in another spelling: the last character's unused low bits set.

    A 43-character segment (32 bytes, HS256's signature) has 2 unused bits in its last
    character; 'A' and 'B' decode alike there."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(segment[-1])
    return segment[:-1] + alphabet[index ^ 1]


# --- canonical text (item: several spellings of one token) --------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(lambda t: t + "=", id="padding"),
        pytest.param(lambda t: t + "==", id="double-padding"),
        pytest.param(lambda t: t + "\\", id="backslash"),
        pytest.param(lambda t: t + "\xff", id="0xFF byte"),
        pytest.param(lambda t: t + ".", id="trailing dot"),
        pytest.param(lambda t: t.replace(".", "=.", 1), id="padded header"),
        pytest.param(lambda t: t.replace(".", " .", 1), id="space"),
        pytest.param(_flip_last_bits, id="unused bits set"),
        pytest.param(lambda t: t + ".x", id="four segments"),
    ],
)
async def test_another_spelling_of_a_valid_access_token_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, spelling: Any
) -> None:
    tokens = await patient_tokens(db, settings)
    assert (await me(client, tokens.access)).status_code == 200  # the canonical one works
    variant = spelling(tokens.access)
    assert variant != tokens.access
    refused(
        await client.get(
            "/auth/me", headers={"Authorization": f"Bearer {variant}".encode("latin-1")}
        )
    )
    assert (await me(client, tokens.access)).status_code == 200  # and still works after


@pytest.mark.parametrize("suffix", ["=", "==", "\\"])
async def test_a_refresh_token_spelled_otherwise_is_not_spent(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, suffix: str
) -> None:
    tokens = await patient_tokens(db, settings)
    variant = await client.post("/auth/refresh/", json={"refresh_token": tokens.refresh + suffix})
    refused(variant)
    # The original was neither spent nor taken for a reuse: it refreshes once, as usual.
    original = await client.post("/auth/refresh/", json={"refresh_token": tokens.refresh})
    assert original.status_code == 200


async def test_a_variant_after_the_original_is_cached_is_still_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """Verified tokens are cached by their text: the cache must never answer for a variant."""
    tokens = await patient_tokens(db, settings)
    for _ in range(2):
        assert (await me(client, tokens.access)).status_code == 200
    refused(await me(client, tokens.access + "="))


# --- claims (item: lax claims) -------------------------------------------------------------


@pytest.mark.parametrize("sub", [" {id}", "{id} ", "0{id}", "+{id}", "0_{id}", "{id}.0", ""])
async def test_a_subject_not_in_canonical_decimal_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, sub: str
) -> None:
    tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    claims["sub"] = sub.format(id=claims["sub"])
    refused(await me(client, sign(claims)))


def _digits(number: str, zero: str) -> str:
    return "".join(chr(ord(zero) + int(digit)) for digit in number)


@pytest.mark.parametrize(
    "zero", ["\u0660", "\uff10", "\u0966"], ids=["arabic", "fullwidth", "devanagari"]
)
async def test_a_subject_in_other_digits_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, zero: str
) -> None:
    tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    claims["sub"] = _digits(claims["sub"], zero)
    refused(await me(client, sign(claims)))


@pytest.mark.parametrize("claim", ["iat", "exp"])
@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(str, id="string"),
        pytest.param(lambda value: True, id="boolean"),
        pytest.param(lambda value: [value], id="array"),
        pytest.param(lambda value: None, id="null"),
    ],
)
async def test_times_must_be_json_numbers(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, claim: str, spelling: Any
) -> None:
    tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    claims[claim] = spelling(int(claims[claim]))
    refused(await me(client, sign(claims)))


async def test_integer_times_are_accepted(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """A NumericDate may be an integer or not (RFC 7519 §2): both are JSON numbers."""
    tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    assert isinstance(claims["iat"], float)  # sub-second issue times
    claims["iat"] = int(claims["iat"]) + 1
    assert (await me(client, sign(claims))).status_code == 200


async def test_a_token_issued_in_the_future_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    claims["iat"] += 3600
    claims["exp"] += 3600
    refused(await me(client, sign(claims)))
    claims["iat"] -= 3600 - 5  # a few seconds ahead: within the clocks' leeway
    assert (await me(client, sign(claims))).status_code == 200


@pytest.mark.parametrize("role", [None, "", 7])
async def test_a_token_without_its_role_claim_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, role: Any
) -> None:
    tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    if role is None:
        del claims["role"]
    else:
        claims["role"] = role
    refused(await me(client, sign(claims)))


@pytest.mark.parametrize(
    "amr", ["pwd", [], ["pwd", "pwd"], ["sms"], [1], None, ["PWD"], {"pwd": 1}]
)
async def test_amr_must_be_a_list_of_known_methods(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, amr: Any
) -> None:
    tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    assert claims["amr"] == ["pwd"]
    claims["amr"] = amr
    refused(await me(client, sign(claims)))


async def test_a_token_from_before_amr_is_a_password_login(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """Tokens issued before the claim existed come from password logins: still accepted."""
    tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.access)
    del claims["amr"]
    assert (await me(client, sign(claims))).status_code == 200


# --- the refresh token's own expiry --------------------------------------------------------


async def test_a_refresh_token_past_its_own_exp_is_401(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    """Refused by the token's `exp`, although its login (the family row) still runs."""
    tokens = await patient_tokens(db, settings)
    claims = claims_of(tokens.refresh)
    family = await db.get(TokenFamily, claims["fam"])
    assert family is not None
    family.expires_at = frozen_clock.now() + 2 * (family.expires_at - frozen_clock.now())
    await db.commit()

    frozen_clock.advance(days=settings.refresh_token_expire_days, seconds=1)
    assert frozen_clock.now().timestamp() >= claims["exp"]
    assert frozen_clock.now() < family.expires_at
    refused(await client.post("/auth/refresh/", json={"refresh_token": tokens.refresh}))


async def test_a_refresh_token_within_its_exp_refreshes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, frozen_clock: Any
) -> None:
    tokens = await patient_tokens(db, settings)
    frozen_clock.advance(days=settings.refresh_token_expire_days, seconds=-2)
    response = await client.post("/auth/refresh/", json={"refresh_token": tokens.refresh})
    assert response.status_code == 200
