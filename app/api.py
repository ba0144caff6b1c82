"""Route wiring: every route of the app in one flat list, the most read first."""

from fastapi import FastAPI

from app import fhir, health
from app.audit.router import router as audit_router
from app.auth.mfa.router import router as mfa_router
from app.auth.router import router as auth_router
from app.core.routing import add_routes
from app.departments.router import router as departments_router
from app.emergency.router import router as emergency_router
from app.records.router import router as records_router
from app.users.router import router as users_router


def include_routes(app: FastAPI) -> None:
    # Every /api route refuses a missing or forged token first (401), before its own
    # parameters are read; each then checks it against the database: a read in its own
    # statement (auth.reader), a write first in its transaction (get_principal).
    add_routes(
        app,
        records_router,  # first: routes are matched in order, and these are the most read
        *fhir.HOT_ROUTERS,
        users_router,
        departments_router,
        emergency_router,
        audit_router,
        *fhir.ROUTERS,
        auth_router,
        mfa_router,
        health.router,
    )
    fhir.install(app)  # after core.handlers (main.create_app): wraps their answers
