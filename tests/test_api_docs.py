"""The API's reference page in a real browser: rendered from vendored files under the
Content-Security-Policy (the `page` fixture fails the test on any violation)."""

from __future__ import annotations

import pytest

from tests.test_browser import sign_in

pytestmark = pytest.mark.browser


def test_a_member_reads_the_api_reference_rendered_from_local_files(page, live_server, owner):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, live_server, owner.username)
    page.goto(live_server.url + "/account/tokens")
    page.get_by_role("link", name="API reference").first.click()
    page.locator(".swagger-ui .info .title").wait_for(timeout=20_000)
    assert "nanoweb API" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock-summary-path", has_text="/api/v1/jobs/{job_id}/original").count() == 1
    assert all(url.startswith(live_server.url) or url.startswith("data:") for url in requested), requested
