"""Liveness and readiness probes."""

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.core.routing import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness", description="200 while the process lives.")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    description="200 when the database answers, 503 when it does not.",
    responses={503: {"description": "The database does not answer"}},
)
async def readyz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means "not ready"
        return JSONResponse(
            {"status": "unavailable"}, status_code=503, headers={"Retry-After": "5"}
        )
    return JSONResponse({"status": "ok"})
