"""The FHIR R4 read facade (API.md, section 5): the same data, policies and audit as the
REST routes, for the systems a hospital already runs."""

from fastapi import FastAPI

from app.fhir import errors, systems
from app.fhir.capability import router as capability_router
from app.fhir.condition.router import router as condition_router
from app.fhir.organization.router import router as organization_router
from app.fhir.patient.router import router as patient_router
from app.fhir.practitioner.router import router as practitioner_router

# Conditions are the most read; the other types after the REST routes.
HOT_ROUTERS = (condition_router,)
ROUTERS = (patient_router, practitioner_router, organization_router, capability_router)


def install(app: FastAPI) -> None:
    """What every FHIR route needs of the app: its identifier systems, and errors as
    OperationOutcomes (after core.handlers has installed the handlers)."""
    app.state.fhir_systems = systems.of_settings(app.state.settings)
    errors.install(app)
