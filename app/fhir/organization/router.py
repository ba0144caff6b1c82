"""FHIR Organization: a department, for every authenticated caller (as the REST
department routes)."""

from fastapi import Request
from starlette.responses import Response

from app.departments import service
from app.fhir import search
from app.fhir.organization import mapping
from app.fhir.routing import fhir_router, read_resource, read_route, search_resources, search_routes

router = fhir_router()
WHO = "Every authenticated caller."

PARAMS = (
    search.id_param(),
    search.last_updated("created_at", "When the department was made"),
    search.name_param("http://hl7.org/fhir/SearchParameter/Organization-name"),
)


async def fhir_read_organization(request: Request) -> Response:
    return await read_resource(request, service.get_department, mapping.organization, created=True)


async def fhir_search_organizations(request: Request) -> Response:
    return await search_resources(request, PARAMS, service.search_departments, mapping.organization)


read_route(router, "Organization", fhir_read_organization, who=WHO)
search_routes(router, "Organization", fhir_search_organizations, PARAMS, who=WHO)
