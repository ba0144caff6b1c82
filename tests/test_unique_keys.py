"""Names unique by their key (NFKC, casefolded, trimmed), in the service and in the database;
the names themselves stored as sent."""

from typing import Any

import httpx
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.departments.models import Department
from app.users.models import User, casefold_key
from tests.auth.conftest import registration
from tests.factories import create_admin, create_department, create_patient, tokens_for, unique

DEPARTMENTS = "/api/department/"


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("Cardiology", "cardiology"),
        ("  Cardiology \t", "cardiology"),
        ("Ｃａｒｄｉｏｌｏｇｙ", "cardiology"),  # fullwidth
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
        ("ﬁle", "file"),  # a ligature
        ("Kelvin \u212a", "kelvin k"),  # KELVIN SIGN
        ("ａlice@example.org", "alice@example.org"),
        ("Cardiology\u00a0", "cardiology"),  # a no-break space
        ("Two  Words", "two  words"),  # inner spaces are part of the name
    ],
)
def test_the_key_rule(value: str, key: str) -> None:
    assert casefold_key(value) == key


# --- departments ---------------------------------------------------------------------------


def fullwidth(text: str) -> str:
    """The fullwidth forms of ASCII letters, digits and signs (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(lambda name: name + " ", id="trailing space"),
        pytest.param(lambda name: "\t" + name, id="leading tab"),
        pytest.param(lambda name: fullwidth(name[0]) + name[1:], id="fullwidth first letter"),
        pytest.param(lambda name: fullwidth(name.lower()), id="all fullwidth"),
        pytest.param(str.upper, id="capitals"),
    ],
)
async def test_a_near_duplicate_department_name_is_409(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, spelling: Any
) -> None:
    admin = (await tokens_for(db, settings, await create_admin(db))).headers
    name = unique("Cardiology")
    created = await client.post(DEPARTMENTS, json={"name": name}, headers=admin)
    assert created.status_code == 201
    variant = spelling(name)
    assert variant != name
    response = await client.post(DEPARTMENTS, json={"name": variant}, headers=admin)
    assert response.status_code == 409, variant
    assert response.json() == {"detail": "A department with this name already exists"}

    other = await client.post(DEPARTMENTS, json={"name": unique("Neurology")}, headers=admin)
    renamed = await client.patch(
        f"{DEPARTMENTS}{other.json()['id']}", json={"name": variant}, headers=admin
    )
    assert renamed.status_code == 409


async def test_a_department_name_is_stored_as_sent(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    admin = (await tokens_for(db, settings, await create_admin(db))).headers
    name = f"  {unique('Ｏncology')}  "
    created = await client.post(DEPARTMENTS, json={"name": name}, headers=admin)
    assert created.status_code == 201
    assert created.json()["name"] == name
    # Renaming a department to a spelling of its own name is no conflict.
    same = await client.patch(
        f"{DEPARTMENTS}{created.json()['id']}", json={"name": name.strip()}, headers=admin
    )
    assert same.status_code == 200
    assert same.json()["name"] == name.strip()


@pytest.mark.parametrize(
    ("name", "message"),
    [("   ", "blank"), ("\u3000\t", "blank"), ("\ufdfa" * 6, "once normalised")],
)
async def test_a_name_without_a_usable_key_is_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, name: str, message: str
) -> None:
    admin = (await tokens_for(db, settings, await create_admin(db))).headers
    response = await client.post(DEPARTMENTS, json={"name": name}, headers=admin)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "name"]
    assert message in error["msg"]


async def test_the_database_refuses_a_near_duplicate_department(db: AsyncSession) -> None:
    """Enforced by the unique index on the key, not only by the service's check."""
    name = unique("Radiology")
    await create_department(db, name=name)
    db.add(Department(name=f"Ｒ{name[1:]} "))
    with pytest.raises(IntegrityError):
        await db.flush()
    await db.rollback()


# --- users ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "near_duplicate",
    ["ａ{local}@example.org", "{LOCAL}@EXAMPLE.ORG", "a{local}@ｅxample.org"],
)
async def test_a_near_duplicate_email_is_409(
    client: httpx.AsyncClient, near_duplicate: str
) -> None:
    local = unique("alice")
    first = registration(email=f"a{local}@example.org")
    assert (await client.post("/auth/register/", json=first)).status_code == 201
    email = near_duplicate.format(local=local, LOCAL="A" + local.upper())
    assert casefold_key(email) == casefold_key(first["email"])
    response = await client.post("/auth/register/", json=registration(email=email))
    assert response.status_code == 409, email
    assert response.json() == {"detail": "Email already registered"}


async def test_a_username_in_another_case_is_409(client: httpx.AsyncClient) -> None:
    first = registration()
    assert (await client.post("/auth/register/", json=first)).status_code == 201
    again = registration(username=first["username"].upper(), email=f"{unique('x')}@example.org")
    response = await client.post("/auth/register/", json=again)
    assert response.status_code == 409
    assert response.json() == {"detail": "Username already registered"}


async def test_the_database_refuses_a_near_duplicate_email(db: AsyncSession) -> None:
    local = unique("amy")
    await create_patient(db, email=f"{local}@example.org")
    near = User(
        username=unique("other_"),
        email=f"ａ{local[1:]}@Example.org ",
        full_name="Another",
        password_hash="x",
        role="patient",
    )
    db.add(near)
    with pytest.raises(IntegrityError):
        await db.flush()
    await db.rollback()
