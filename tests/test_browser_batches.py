"""A person in a real browser uploads a CSV of prompts, checks the preview, runs it and watches
the batch finish."""

from __future__ import annotations

import pytest

from tests.test_browser import sign_in

pytestmark = pytest.mark.browser


def test_a_member_uploads_a_csv_and_watches_its_batch_finish(page, live_server, worker, owner, make_account, simulator):
    simulator.latency = 0.5
    make_account("gemini")
    sign_in(page, live_server, owner.username)
    page.goto(live_server.url + "/batches")

    csv = b"prompt,model,resolution\na kite over the dunes,,2K\na kite at night,Nano Banana Pro,\na kite in rain,Nano Banana 2 Lite,\n"
    page.get_by_label("…or a CSV file").set_input_files({"name": "kites.csv", "mimeType": "text/csv", "buffer": csv})
    page.get_by_role("button", name="Check and price").click()

    total = page.locator("#batch-total")
    total.wait_for()
    # 0.101 (2.1 at 2K) + 0.134 (Pro at 1K) + 0.034 (2 Lite) = 0.269
    assert "Total: 0.269 USD for 3 images" in total.inner_text()
    assert page.locator("table.batch-rows tbody tr").count() == 3
    page.get_by_role("button", name="Run 3 images for 0.269 USD").click()

    page.wait_for_url("**/batches/*")
    page.locator("#batch-finished").wait_for(timeout=60_000)
    assert "3 done" in page.locator("#batch-progress").inner_text()
    assert "Cost so far: 0.269 USD" in page.locator("#batch-progress").inner_text()
    page.reload()
    page.locator("#batch-results img").nth(2).wait_for()
    assert page.get_by_role("link", name="Download the results as ZIP (with metadata)").count() == 1
