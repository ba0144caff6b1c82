"""The application factory: `uvicorn app.main:app` serves what `create_app()` builds."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import api, docs
from app.audit.batcher import AuditBatcher
from app.audit.links import AuditLinker
from app.auth.mfa.keys import MfaKeys
from app.core import handlers, observability, proxies
from app.core.config import ConfigError, Settings, exit_for, get_settings
from app.core.db import close_engine, create_engine, create_sessionmaker
from app.core.garbage import freeze_startup_objects
from app.core.logging import configure_logging
from app.core.memory import return_large_blocks
from app.core.middleware import (
    BodyLimitMiddleware,
    CancelledRequestMiddleware,
    HeadMiddleware,
    NoStoreMiddleware,
    RequestIdMiddleware,
)
from app.core.ratelimit import create_limiter
from app.core.routing import operation_id
from app.core.security import prepare_hashing
from app.users import bootstrap

DESCRIPTION = """
Doctors, patients, departments and department-scoped patient records, with every access
to patient data audited in a tamper-evident trail.

Authenticate with **Authorize** (OAuth2 password flow against `/auth/login/`).
"""

# The answers under these prefixes name people: none may be cached (API.md, section 2).
NO_STORE_PREFIXES = ("/auth", "/api", "/fhir")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Own the engine for the process's lifetime (unless a caller already attached one)."""
    return_large_blocks()  # before the first hash
    settings: Settings = app.state.settings
    owns_engine = not hasattr(app.state, "engine")
    if owns_engine:
        app.state.engine = create_engine(settings)
        app.state.sessionmaker = create_sessionmaker(app.state.engine)
    if settings.first_admin_username and settings.first_admin_password:
        await bootstrap.create_admin(
            app.state.sessionmaker, settings.first_admin_username, settings.first_admin_password
        )
    await prepare_hashing()
    linker = AuditLinker(app.state.sessionmaker, settings.audit_link_seconds)
    linker.start()
    freeze_startup_objects()
    try:
        yield
    finally:
        await linker.stop()
        if app.state.rate_limiter is not None:
            await app.state.rate_limiter.counters.close()
        if owns_engine:
            await close_engine(app.state.engine)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    app = FastAPI(
        title="Hospital Management System API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        generate_unique_id_function=operation_id,
        swagger_ui_parameters={"persistAuthorization": True},
        docs_url=None,  # both served by app.docs from local assets
        redoc_url=None,
        # The metrics are Prometheus' (core.observability); FastAPI's OpenTelemetry, which
        # no deployment configures, would look for its providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.audit_batcher = AuditBatcher()
    app.state.signing_key = settings.signing_key()  # fail fast on a missing production key
    app.state.mfa_keys = MfaKeys.from_settings(settings, app.state.signing_key)
    app.state.rate_limiter = create_limiter(settings, app.state)

    handlers.install(app)
    api.include_routes(app)
    docs.install(app)
    for path in ("/metrics", "/metrics/"):
        app.add_route(path, observability.metrics, methods=["GET"], include_in_schema=False)

    app.add_middleware(CancelledRequestMiddleware)  # innermost: its 503 passes the others
    app.add_middleware(HeadMiddleware)  # every route that serves GET serves HEAD
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=[
                "ETag",
                "Link",
                "RateLimit",
                "RateLimit-Policy",
                "Retry-After",
                "X-Request-ID",
            ],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(NoStoreMiddleware, prefixes=NO_STORE_PREFIXES)  # its 413 included
    # inside the request-id middleware: sees the request id
    app.add_middleware(observability.ObservabilityMiddleware, log_requests=settings.access_log)
    app.add_middleware(RequestIdMiddleware)
    proxies.install(app, settings)  # outermost: the middlewares above see the client
    return app


try:
    app = create_app()
except ConfigError as error:  # `uvicorn app.main:app`: one line and exit 2, no traceback
    exit_for(error)
