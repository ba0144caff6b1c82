"""Calling the FHIR facade in tests: every answer's body is validated (R4 4.0.1)."""

from typing import Any

import httpx

from tests.fhir.validation import validate

BASE = "/fhir/R4"
MEDIA_TYPE = "application/fhir+json"


async def fhir(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    **kwargs: Any,
) -> httpx.Response:
    """A request to the facade; a body, when there is one, must be valid FHIR R4."""
    url = path if path.startswith("http") else f"{BASE}{path}"
    response = await client.request(method, url, headers=headers, **kwargs)
    if response.content:
        assert response.headers["content-type"] == MEDIA_TYPE, response.headers
        validate(response.json())
    assert response.headers["cache-control"] == "no-store"
    return response


def issue(response: httpx.Response) -> dict[str, Any]:
    """The one issue of an OperationOutcome answer."""
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    [found] = body["issue"]
    assert found["severity"] == "error"
    return dict(found)


def entries(bundle: dict[str, Any], mode: str = "match") -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for found in bundle.get("link", []):
        if found["relation"] == relation:
            return str(found["url"])
    return None
