"""The facade's protocol: the CapabilityStatement made from the routes, OperationOutcome
errors with section 2's status codes, read-only (405), no-store, HEAD."""

from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.fhir.helpers import BASE, fhir, issue
from tests.records.world import World

TYPES = ("Patient", "Practitioner", "PractitionerRole", "Organization", "Condition")


async def test_the_capability_statement_names_what_the_routes_serve(
    client: httpx.AsyncClient, app: Any
) -> None:
    response = await fhir(client, "/metadata")  # no token: anyone may read it
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert (statement["status"], statement["kind"], statement["fhirVersion"]) == (
        "active",
        "instance",
        "4.0.1",
    )
    assert "json" in statement["format"]
    assert statement["date"]
    [rest] = statement["rest"]
    assert rest["mode"] == "server"
    [oauth] = rest["security"]["extension"]
    assert oauth["extension"] == [{"url": "token", "valueUri": "http://test/auth/login/"}]
    assert rest["security"]["service"][0]["coding"][0]["code"] == "OAuth"
    served = {resource["type"]: resource for resource in rest["resource"]}
    assert set(served) == set(TYPES)

    # Every route is in it, and nothing else: from the routes, so it cannot drift.
    routes = [
        route
        for route in app.routes
        if isinstance(route, APIRoute) and (route.openapi_extra or {}).get("x-fhir-interaction")
    ]
    for route in routes:
        extra = route.openapi_extra
        resource = served[extra["x-fhir-resource"]]
        assert {"code": extra["x-fhir-interaction"]} in resource["interaction"]
        declared = {p["name"] for p in extra.get("parameters", ()) if "x-fhir-type" in p}
        assert declared <= {p["name"] for p in resource.get("searchParam", [])}
    interactions = {kind: {i["code"] for i in r["interaction"]} for kind, r in served.items()}
    assert interactions["Condition"] == {"read", "vread", "history-instance", "search-type"}
    assert interactions["Patient"] == {"read", "search-type"}
    params = {kind: {p["name"] for p in r.get("searchParam", [])} for kind, r in served.items()}
    assert params["Patient"] == {"_id", "_lastUpdated", "name", "identifier", "birthdate", "gender"}
    assert params["Practitioner"] == {"_id", "_lastUpdated", "name", "identifier"}
    assert params["PractitionerRole"] == {"_id", "_lastUpdated", "practitioner", "organization"}
    assert params["Organization"] == {"_id", "_lastUpdated", "name"}
    assert params["Condition"] == {"_id", "_lastUpdated", "patient", "subject", "recorded-date"}
    assert "Condition:subject" in served["Condition"]["searchInclude"]


async def test_the_capability_statement_ignores_tokens_and_refuses_xml(
    client: httpx.AsyncClient,
) -> None:
    forged = {"Authorization": "Bearer not-a-token"}
    assert (await fhir(client, "/metadata", forged)).status_code == 200
    assert (await fhir(client, "/metadata?_format=json")).status_code == 200
    refused = await fhir(client, "/metadata?_format=xml")
    assert refused.status_code == 406
    assert issue(refused)["code"] == "not-supported"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer forged"}], ids=["none", "forged"]
)
async def test_without_a_valid_token_every_type_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for kind in TYPES:
        for path in (f"/{kind}", f"/{kind}/1"):
            response = await fhir(client, path, headers)
            assert response.status_code == 401, path
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert issue(response)["code"] == "login"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/Patient"),
        ("PUT", "/Patient/1"),
        ("PATCH", "/Condition/1"),
        ("DELETE", "/Condition/1"),
        ("PUT", "/Organization/1"),
        ("POST", ""),
        ("POST", "/"),
        ("DELETE", "/Practitioner/1"),
        ("POST", "/Observation"),
        ("PUT", "/Condition/1/_history/1"),
    ],
)
async def test_every_write_is_405(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    method: str,
    path: str,
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    body = {"resourceType": "Patient"}
    response = await fhir(client, path, headers, method=method, json=body)
    assert response.status_code == 405, response.text
    assert issue(response)["code"] == "not-supported"
    assert "GET" in response.headers["Allow"]


async def test_unknown_types_are_404_outcomes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    for path in ("/Observation", "/Observation/1", "", "/Patient/1/extra"):
        response = await fhir(client, path, headers)
        assert response.status_code == 404, path
        assert issue(response)["code"] == "not-found"


async def test_head_and_trailing_slashes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    url = f"{BASE}/Condition/{world.record.id}"
    get = await client.get(url, headers=headers)
    head = await client.head(url, headers=headers)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Cache-Control"] == "no-store"
    slashed = await fhir(client, f"/Condition/{world.record.id}/", headers)
    assert slashed.json() == get.json()
    assert (await fhir(client, "/Condition/", headers)).status_code == 200
