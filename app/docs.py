"""Swagger UI at /docs and ReDoc at /redoc, served from the package's own copy of their files
(fastapi-standalone-docs ships both): the pages work on a hospital network with no way out
to a CDN."""

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles

from app.core.routing import APIRouter, add_routes

STATIC = Path(str(files("fastapi_standalone_docs") / "static"))
ASSETS = "/docs/assets"  # STATIC's swagger/, redoc/ and fastapi/ (the favicon)
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
FAVICON = f"{ASSETS}/fastapi/favicon.png"

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _openapi_url(request: Request) -> str:
    app: FastAPI = request.app
    return _root(request) + (app.openapi_url or "/openapi.json")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}/swagger/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger/swagger-ui.css",
        swagger_favicon_url=root + FAVICON,
        oauth2_redirect_url=root + OAUTH2_REDIRECT,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS}/redoc/redoc.standalone.js",
        redoc_favicon_url=root + FAVICON,
        with_google_fonts=False,
    )


@router.get("/redoc/logo-mini.svg")
async def redoc_logo() -> FileResponse:
    """The packaged script asks for its logo beside the page, not from Redocly's CDN."""
    return FileResponse(STATIC / "redoc" / "logo-mini.svg", media_type="image/svg+xml")


def install(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=STATIC), "docs-assets")
    add_routes(app, router)
