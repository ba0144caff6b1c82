"""`GET /fhir/R4/metadata`: the CapabilityStatement, built from the FHIR routes themselves
(each marks the interaction it serves and declares its search parameters), so it names
exactly what is served."""

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.auth.dependencies import TOKEN_URL
from app.fhir.errors import MEDIA_TYPE
from app.fhir.responses import FhirJSONResponse, base_url, fhir_response, negotiate, origin
from app.fhir.routing import INCLUDES, INTERACTION, RESOURCE, public_router, responses

router = public_router()
FHIR_VERSION = "4.0.1"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
_STARTED = datetime.now(UTC).replace(microsecond=0)


def _resources(app: FastAPI) -> list[dict[str, Any]]:
    interactions: dict[str, list[str]] = defaultdict(list)
    params: dict[str, list[dict[str, Any]]] = defaultdict(list)
    includes: dict[str, list[str]] = defaultdict(list)
    for route in app.routes:
        extra = getattr(route, "openapi_extra", None) or {}
        if not isinstance(route, APIRoute) or INTERACTION not in extra:
            continue
        kind, interaction = extra[RESOURCE], extra[INTERACTION]
        if interaction in interactions[kind]:
            continue  # the POST form of a search
        interactions[kind].append(interaction)
        includes[kind].extend(extra.get(INCLUDES, ()))
        for parameter in extra.get("parameters", ()):
            if "x-fhir-type" in parameter:
                declared = {
                    "name": parameter["name"],
                    "type": parameter["x-fhir-type"],
                    "documentation": parameter["description"],
                }
                if "x-fhir-definition" in parameter:
                    declared["definition"] = parameter["x-fhir-definition"]
                params[kind].append(declared)
    found = []
    for kind, served in interactions.items():
        resource: dict[str, Any] = {
            "type": kind,
            "interaction": [{"code": code} for code in served],
            "versioning": "versioned",
            "readHistory": "history-instance" in served,
            "conditionalRead": "not-match",
        }
        if includes[kind]:
            resource["searchInclude"] = includes[kind]
        if params[kind]:
            resource["searchParam"] = params[kind]
        found.append(resource)
    return found


def capability_statement(request: Request) -> dict[str, Any]:
    app: FastAPI = request.app
    base = base_url(request)
    security = {
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [{"url": "token", "valueUri": origin(request) + TOKEN_URL}],
            }
        ],
        "service": [
            {
                "coding": [{"system": SECURITY_SERVICE, "code": "OAuth"}],
                "text": "Bearer: OAuth2 access tokens",
            }
        ],
        "description": "Send `Authorization: Bearer <access token>`; get one with the OAuth2 "
        f"password flow at {TOKEN_URL} (API.md, section 4).",
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _STARTED,
        "publisher": app.title,
        "kind": "instance",
        "software": {"name": app.title, "version": app.version},
        "implementation": {"description": f"{app.title}: FHIR R4 read facade", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", MEDIA_TYPE],
        "rest": [
            {
                "mode": "server",
                "documentation": "Read-only: every write interaction is a 405.",
                "security": security,
                "resource": _resources(app),
            }
        ],
    }


@router.get(
    "/metadata",
    name="fhir_capabilities",
    summary="CapabilityStatement",
    description="What this server serves: resources, interactions, search parameters, and "
    "how to authenticate. Anyone may read it.",
    response_class=FhirJSONResponse,
    responses=responses("CapabilityStatement", "The CapabilityStatement", 406),
)
async def fhir_capabilities(request: Request) -> Response:
    negotiate(request)
    return fhir_response(capability_statement(request))
