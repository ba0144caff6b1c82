"""The schema: Swagger's Authorize uses the OAuth2 password flow against /auth/login/."""

from typing import Any

import httpx
import pytest

AUTH_ROUTES = {
    ("/auth/register/", "post"): {"201", "401", "403", "409", "422"},
    ("/auth/login/", "post"): {"200", "401", "422", "429"},
    ("/auth/refresh/", "post"): {"200", "401", "422"},
    ("/auth/logout/", "post"): {"204", "401"},
    ("/auth/me", "get"): {"200", "401"},
    ("/auth/password/", "post"): {"204", "401", "422", "429"},
}


@pytest.fixture
async def schema(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_security_scheme_is_oauth2_password_against_login(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["password"]["tokenUrl"] == "/auth/login/"


async def test_login_declares_json_and_form_bodies(schema: dict[str, Any]) -> None:
    content = schema["paths"]["/auth/login/"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    for media in content.values():
        assert {"username", "password"} <= set(media["schema"]["properties"])


async def test_auth_routes_declare_their_answers(schema: dict[str, Any]) -> None:
    for (path, method), statuses in AUTH_ROUTES.items():
        operation = schema["paths"][path][method]
        assert operation["summary"]
        assert statuses <= set(operation["responses"]), (path, sorted(operation["responses"]))
        for status in statuses - {"200", "201", "204"}:
            assert operation["responses"][status]["description"]


async def test_no_response_schema_has_a_password(schema: dict[str, Any]) -> None:
    for name in ("UserPublic", "TokenResponse"):
        properties = schema["components"]["schemas"][name]["properties"]
        assert not [field for field in properties if "password" in field]


async def test_protected_auth_routes_carry_the_security_requirement(
    schema: dict[str, Any],
) -> None:
    for path, method in [
        ("/auth/me", "get"),
        ("/auth/logout/", "post"),
        ("/auth/password/", "post"),
    ]:
        assert schema["paths"][path][method]["security"] == [{"OAuth2PasswordBearer": []}]
