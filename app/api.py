"""Route wiring: the public routes, and the protected ones behind one authentication check."""

from fastapi import APIRouter, Depends, FastAPI

from app import health
from app.audit.router import router as audit_router
from app.auth.dependencies import get_claims
from app.auth.router import router as auth_router
from app.departments.router import router as departments_router
from app.emergency.router import router as emergency_router
from app.records.router import router as records_router
from app.users.router import router as users_router

# Every route here needs a signed, unexpired access token before anything else (401). Each
# then checks it against the database: a read in its own statement (auth.reader), a write
# first in its transaction (auth.dependencies.get_principal), which also decides the role.
protected = APIRouter(prefix="/api", dependencies=[Depends(get_claims)])
for domain_router in (
    records_router,  # first: routes are matched in order, and these are the most read
    users_router,
    departments_router,
    emergency_router,
    audit_router,
):
    protected.include_router(domain_router)


def include_routes(app: FastAPI) -> None:
    app.include_router(health.router)
    app.include_router(auth_router)
    app.include_router(protected)
