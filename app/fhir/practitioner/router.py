"""FHIR Practitioner and PractitionerRole: a doctor, and the role he holds in his
department. Admins and doctors, as the REST doctor routes."""

from fastapi import Request
from starlette.responses import Response

from app.fhir import search
from app.fhir.practitioner import mapping
from app.fhir.routing import fhir_router, read_resource, read_route, search_resources, search_routes
from app.fhir.search import Param
from app.users import service

router = fhir_router()
WHO = "Admins and doctors."

# A role has its doctor's id and account: both types search those alike.
_DOCTOR_PARAMS = (
    search.id_param(),
    search.last_updated("created_at", "When the doctor's account was made"),
)
PRACTITIONER_PARAMS = (
    *_DOCTOR_PARAMS,
    search.name_param("http://hl7.org/fhir/SearchParameter/Practitioner-name"),
    Param(
        "identifier",
        "token",
        "The license number, as `<license system>|<number>` or alone",
        search.token("license_number"),
        "license_number",
        definition="http://hl7.org/fhir/SearchParameter/Practitioner-identifier",
    ),
)
ROLE_PARAMS = (
    *_DOCTOR_PARAMS,
    Param(
        "practitioner",
        "reference",
        "The doctor: `Practitioner/<id>` (a role has its doctor's id)",
        search.reference("Practitioner"),
        "id",
        modifiers=("Practitioner",),
        definition="http://hl7.org/fhir/SearchParameter/PractitionerRole-practitioner",
    ),
    Param(
        "organization",
        "reference",
        "The department: `Organization/<id>`",
        search.reference("Organization"),
        "department_id",
        modifiers=("Organization",),
        definition="http://hl7.org/fhir/SearchParameter/PractitionerRole-organization",
    ),
)


async def fhir_read_practitioner(request: Request) -> Response:
    return await read_resource(request, service.get_doctor, mapping.practitioner, account=True)


async def fhir_search_practitioners(request: Request) -> Response:
    return await search_resources(
        request, PRACTITIONER_PARAMS, service.search_doctors, mapping.practitioner
    )


async def fhir_read_practitioner_role(request: Request) -> Response:
    return await read_resource(request, service.get_doctor, mapping.practitioner_role, account=True)


async def fhir_search_practitioner_roles(request: Request) -> Response:
    return await search_resources(
        request, ROLE_PARAMS, service.search_doctors, mapping.practitioner_role
    )


read_route(router, "Practitioner", fhir_read_practitioner, who=WHO)
search_routes(router, "Practitioner", fhir_search_practitioners, PRACTITIONER_PARAMS, who=WHO)
read_route(router, "PractitionerRole", fhir_read_practitioner_role, who=WHO)
search_routes(router, "PractitionerRole", fhir_search_practitioner_roles, ROLE_PARAMS, who=WHO)
