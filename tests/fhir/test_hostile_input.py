"""Hostile input on every FHIR operation of the schema: a clear 4xx OperationOutcome, never
a 500 (FHIR's codes: 400 for a value it cannot search with, 404 for an id naming nothing)."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.fhir.helpers import fhir, issue
from tests.records.world import World
from tests.reliability.test_hostile_input import SCHEMA

OPERATIONS = [
    (method.upper(), path, spec)
    for path, methods in SCHEMA["paths"].items()
    if path.startswith("/fhir/")
    for method, spec in methods.items()
]
SEARCHES = [(m, p, s) for m, p, s in OPERATIONS if "{" not in p and not p.endswith("/metadata")]
READS = [(m, p, s) for m, p, s in OPERATIONS if "{" in p]
HOSTILE_VALUES = ["a\x00b", str(2**64), str(-(2**64)), "x" * 5000, "%", "\\", "2024-13-45", "²"]
ODD_IDS = ["0x1", "1e3", "%EF%BC%91", "%D9%A3", "%00", "1;2", "%FF", "-", "9" * 30, "1.0", "+1"]


def test_every_operation_declares_its_errors() -> None:
    for method, path, spec in OPERATIONS:
        declared = set(spec["responses"])
        expected = {"200", "406"}
        if path != "/fhir/R4/metadata":
            expected |= {"401", "403"} | ({"404"} if "{" in path else {"400"})
        if method == "POST":
            expected |= {"413", "415"}
        assert expected <= declared, (method, path, sorted(expected - declared))


@pytest.mark.parametrize(
    ("method", "path", "spec"), SEARCHES, ids=[f"{m} {p}" for m, p, _ in SEARCHES]
)
async def test_hostile_search_values_are_400_or_ignored(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    method: str,
    path: str,
    spec: dict[str, Any],
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    names = [parameter["name"] for parameter in spec.get("parameters", [])]
    if method == "POST":
        names = list(
            spec["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"][
                "properties"
            ]
        )
    url = path.removeprefix("/fhir/R4")
    for name in names:
        for value in HOSTILE_VALUES:
            sent = {"data": {name: value}} if method == "POST" else {"params": {name: value}}
            response = await fhir(client, url, headers, method=method, **sent)
            assert response.status_code in (200, 400, 406), (name, value, response.text)
            if response.status_code != 200:
                assert issue(response)["diagnostics"]
            if "\x00" in value:
                assert response.status_code == 400, (name, response.text)


@pytest.mark.parametrize(("method", "path", "spec"), READS, ids=[f"{m} {p}" for m, p, _ in READS])
async def test_odd_ids_name_nothing(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    world: World,
    method: str,
    path: str,
    spec: dict[str, Any],
) -> None:
    headers = await world.headers(db, settings, "doctor_own")
    for odd in ODD_IDS:
        for name in ("resource_id", "version_id"):
            if f"{{{name}}}" not in path:
                continue
            ids = {"resource_id": str(world.record.id), "version_id": "1", name: odd}
            url = path.removeprefix("/fhir/R4").format(**ids)
            response = await fhir(client, url, headers, method=method)
            assert response.status_code == 404, (url, response.text)
            assert issue(response)["code"] == "not-found"
