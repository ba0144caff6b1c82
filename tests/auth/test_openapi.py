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
    ("/auth/mfa/totp/", "post"): {"201", "401", "409"},
    ("/auth/mfa/totp/confirm", "post"): {"200", "401", "409", "422"},
    ("/auth/mfa/totp/", "delete"): {"204", "401", "403", "409", "422", "429"},
    ("/auth/mfa/verify", "post"): {"200", "401", "422", "429"},
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
    for name in ("UserPublic", "TokenResponse", "TotpEnrolment", "RecoveryCodes", "LoginRefused"):
        properties = schema["components"]["schemas"][name]["properties"]
        assert not [field for field in properties if "password" in field]


async def test_protected_auth_routes_carry_the_security_requirement(
    schema: dict[str, Any],
) -> None:
    for path, method in [
        ("/auth/me", "get"),
        ("/auth/logout/", "post"),
        ("/auth/password/", "post"),
        ("/auth/mfa/totp/", "post"),
        ("/auth/mfa/totp/confirm", "post"),
        ("/auth/mfa/totp/", "delete"),
    ]:
        assert schema["paths"][path][method]["security"] == [{"OAuth2PasswordBearer": []}]
    assert "security" not in schema["paths"]["/auth/mfa/verify"]["post"]  # the MFA token is


async def test_the_two_step_login_is_documented_with_examples(schema: dict[str, Any]) -> None:
    login = schema["paths"]["/auth/login/"]["post"]
    assert "/auth/mfa/verify" in login["description"]
    refused = login["responses"]["401"]["content"]["application/json"]
    assert refused["schema"] == {"$ref": "#/components/schemas/LoginRefused"}
    examples = refused["examples"]
    assert examples["mfa_required"]["value"]["detail"] == "MFA required"
    assert "mfa_token" in examples["mfa_required"]["value"]
    assert "mfa_token" not in examples["wrong_credentials"]["value"]
    verify = schema["paths"]["/auth/mfa/verify"]["post"]
    body = verify["requestBody"]["content"]["application/json"]["schema"]
    request = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert set(request["required"]) == {"mfa_token", "code"}
    assert request["examples"][0]["code"] == "492039"
    ok = verify["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/TokenResponse"}
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(
        verify["responses"]["429"]["headers"]
    )
    enrolment = schema["components"]["schemas"]["TotpEnrolment"]
    assert enrolment["examples"][0]["otpauth_uri"].startswith("otpauth://totp/")
