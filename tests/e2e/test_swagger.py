"""Swagger UI in a real browser: Authorize as a doctor, then execute GET /api/patient_records/.

Debian's Chromium (/usr/bin/chromium), headless, driven by Playwright; the page is the
real /docs of a real server, which serves Swagger UI's files itself: every request that
would leave loopback is refused, so the page proves it needs no CDN. A screenshot is
saved in tests/e2e/artifacts/.
"""

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.factories import seed
from tests.live import start

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


async def keep_on_loopback(route: Any) -> None:
    """Let loopback requests through; refuse any other host."""
    if route.request.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        await route.continue_()
        return
    await route.abort()


async def test_doctor_authorizes_and_lists_records_in_swagger_ui(
    fresh_database_url: Callable[[], Any], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    database_url = await fresh_database_url()
    seeded = await seed(database_url)
    ARTIFACTS.mkdir(exist_ok=True)

    async with await start(database_url, tmp_path) as live:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1600})
                await page.route("**/*", keep_on_loopback)
                await page.goto(f"{live.url}/docs")

                # Authorize: the OAuth2 password flow against /auth/login/.
                await page.locator(".scheme-container button.authorize").click()
                dialog = page.locator(".dialog-ux .modal-ux")
                await dialog.locator("#oauth_username").fill(seeded.doctor_username)
                await dialog.locator("#oauth_password").fill(seeded.password)
                await dialog.locator(".auth-btn-wrapper button.authorize").click()
                await expect(dialog.locator("h6")).to_have_text("Authorized")
                await expect(dialog.locator(".auth-btn-wrapper button.authorize")).to_have_text(
                    "Logout"
                )
                await dialog.locator(".auth-btn-wrapper button.btn-done").click()

                # GET /api/patient_records/ -> Try it out -> Execute.
                operation = page.locator(".opblock.opblock-get").filter(
                    has=page.locator('[data-path="/api/patient_records/"]')
                )
                await operation.locator(".opblock-summary").first.click()
                await operation.locator("button.try-out__btn").click()
                await operation.locator("button.execute").click()

                response = operation.locator(".live-responses-table .response").first
                await expect(response.locator(".response-col_status")).to_have_text(
                    re.compile(r"^\s*200")
                )
                body = operation.locator(".live-responses-table .response-col_description pre")
                await expect(body.first).to_contain_text(seeded.diagnosis)
                curl = await operation.locator(".curl-command").inner_text()
                assert "Authorization: Bearer" in curl
                await operation.screenshot(path=str(ARTIFACTS / "swagger-records.png"))
            finally:
                await browser.close()
