"""FHIR Patient: read and search, as `GET /api/patients/{id}` reads (admins and doctors
read any patient, a patient himself only), audited as its REST twins."""

from fastapi import Request
from starlette.responses import Response

from app.fhir import search
from app.fhir.patient import mapping
from app.fhir.routing import fhir_router, read_resource, read_route, search_resources, search_routes
from app.fhir.search import Param
from app.users import service
from app.users.models import casefold_key

router = fhir_router()
WHO = "Admins and doctors read every patient; a patient only himself (anyone else: 404). Audited."
ADMINISTRATIVE_GENDER = "http://hl7.org/fhir/administrative-gender"

PARAMS = (
    search.id_param(),
    search.last_updated("created_at", "When the patient's account was made"),
    search.name_param("http://hl7.org/fhir/SearchParameter/Patient-name"),
    Param(
        "identifier",
        "token",
        "The username (case-insensitive), as `<username system>|<username>` or alone",
        search.token("username", casefold_key),
        "username",
        definition="http://hl7.org/fhir/SearchParameter/Patient-identifier",
    ),
    Param(
        "birthdate",
        "date",
        "Date of birth, with the prefixes eq, ne, gt, ge, lt, le",
        search.date_value("date"),
        "birth_date",
        definition="http://hl7.org/fhir/SearchParameter/individual-birthdate",
    ),
    Param(
        "gender",
        "token",
        "female, male, other or unknown",
        search.token(ADMINISTRATIVE_GENDER),
        "sex",
        definition="http://hl7.org/fhir/SearchParameter/individual-gender",
    ),
)


async def fhir_read_patient(request: Request) -> Response:
    return await read_resource(request, service.get_patient, mapping.patient, account=True)


async def fhir_search_patients(request: Request) -> Response:
    return await search_resources(request, PARAMS, service.search_patients, mapping.patient)


read_route(router, "Patient", fhir_read_patient, who=WHO)
search_routes(router, "Patient", fhir_search_patients, PARAMS, who=WHO)
