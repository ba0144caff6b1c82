"""Swagger UI served from the package's own copy of its assets: /docs works on a hospital
network with no way out to a CDN."""

from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from app.core.routing import APIRouter, add_routes

ASSETS = "/docs/assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root + (app.openapi_url or "/openapi.json"),
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
        oauth2_redirect_url=root + OAUTH2_REDIRECT,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def install(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=Path(swagger_ui_bundle.swagger_ui_path)), "docs-assets")
    add_routes(app, router)
