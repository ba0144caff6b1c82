"""ReDoc in a real browser: /redoc renders the API's reference from the app's own files.

Debian's Chromium, headless, driven by Playwright, on the real /redoc of a real server: the
page's requests that would leave loopback are refused and recorded, and the test fails if
there were any, or if any request the page made failed. A screenshot is saved in
tests/e2e/artifacts/.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.test_swagger import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.live import start


async def test_redoc_renders_the_reference_offline(
    fresh_database_url: Callable[[], Any], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    database_url = await fresh_database_url()
    ARTIFACTS.mkdir(exist_ok=True)
    left_loopback: list[str] = []
    failed: list[str] = []

    async def loopback_only(route: Any) -> None:
        if route.request.url.startswith(("http://127.0.0.1:", "http://localhost:")):
            await route.continue_()
            return
        left_loopback.append(route.request.url)
        await route.abort()

    def record_failure(response: Any) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.url}")

    async with await start(database_url, tmp_path) as live:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1600})
                await page.route("**/*", loopback_only)
                page.on("response", record_failure)
                page.on("requestfailed", lambda request: failed.append(f"failed {request.url}"))
                await page.goto(f"{live.url}/redoc")

                await expect(page.locator("h1").first).to_contain_text(
                    "Hospital Management System API"
                )
                # The side menu lists the operations by tag; the login operation's section
                # shows its path once opened.
                await page.locator("[role=menuitem]", has_text="Log in").first.click()
                login = page.locator("h2", has_text="Log in").first
                await expect(login).to_be_visible()
                await expect(page.get_by_text("/auth/login/").first).to_be_attached()
                # The packaged script asks for its logo beside the page, which serves it.
                logo = page.locator('img[alt="redocly logo"]').first
                await expect(logo).to_have_attribute("src", "/redoc/logo-mini.svg")
                assert await logo.evaluate("image => image.complete && image.naturalWidth > 0")
                await page.screenshot(path=str(ARTIFACTS / "redoc.png"))
            finally:
                await browser.close()

    assert not left_loopback
    assert not failed
