"""A person in a real browser: sign in, generate, watch the card finish, open the detail page."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import PASSWORD, store_result, wait_for

pytestmark = pytest.mark.browser


def until(page, script: str, timeout: float = 10.0) -> None:
    """Wait until the function `script` returns true in the page. (Playwright's wait_for_function
    has the page evaluate a string, which the Content-Security-Policy refuses: no 'unsafe-eval'.)"""
    wait_for(lambda: page.evaluate(script), timeout=timeout, interval=0.05)


def sign_in(page, live_server, username: str, password: str = PASSWORD, path: str = "/login"):
    page.goto(live_server.url + path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in" if path == "/login" else "Log in").click()


def swatches(owner, account) -> None:
    """Three finished results of 64 px, made in this order: red, green, blue."""
    from nanoweb.studio.models import Generation
    from tests.test_references import png

    for color in ["red", "green", "blue"]:
        job = Generation.objects.create(owner=owner, prompt=f"swatch {color}", account=account,
                                        model="google/nano-banana-2", status="succeeded")  # fmt: skip
        store_result(job, png(color=color))


def test_a_member_signs_in_generates_and_opens_the_result(
    page, live_server, worker, owner, crun_account, simulator, tmp_path
):
    simulator.latency = 2.0
    page.goto(live_server.url + "/")

    assert "/login" in page.url
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")

    page.get_by_label("Prompt").fill("a lighthouse at dawn, seen from the sea")
    page.get_by_label("Aspect ratio").select_option("16:9")
    page.get_by_label("Prompt").press("Control+Enter")

    card = page.locator("article.card").first
    card.wait_for()
    assert "a lighthouse at dawn" in card.inner_text()
    assert card.locator("progress").count() == 1, "a running job shows a progress bar"
    image = card.locator("img")
    image.wait_for(timeout=30_000)
    assert card.locator(".pill").inner_text() == "Done"
    page.screenshot(path=str(tmp_path / "studio.png"))

    card.locator("a.preview").click()  # the lightbox, which links to the result's page
    page.locator("dialog#lightbox").get_by_role("link", name="Details").click()
    page.wait_for_url("**/generations/*")
    assert page.locator(".detail-image img").evaluate("img => img.naturalWidth") == 1360
    assert "crun (sim)" in page.locator(".detail-meta").inner_text()
    assert "16:9" in page.locator(".detail-meta").inner_text()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download", exact=True).click()
    download = download_info.value
    assert download.suggested_filename.endswith(".png")
    assert os.path.getsize(download.path()) == owner.generation_set.get().images.get().bytes


def test_a_bad_prompt_is_explained_next_to_the_field(page, live_server, owner, crun_account):
    sign_in(page, live_server, owner.username)

    page.get_by_role("button", name="Generate").click()

    error = page.locator("#id_prompt_error")
    error.wait_for()
    assert "Write a prompt" in error.inner_text()
    assert page.locator("article.card").count() == 0


def test_the_gallery_lightbox_opens_moves_with_the_arrow_keys_and_closes(
    page, live_server, owner, teammate, crun_account
):

    swatches(teammate, crun_account)
    sign_in(page, live_server, owner.username)
    page.goto(live_server.url + "/gallery?q=swatch")

    page.locator("#feed a[data-lightbox]").first.click()  # newest first: blue
    lightbox = page.locator("dialog#lightbox")
    lightbox.wait_for(state="visible")
    assert lightbox.locator("figcaption").inner_text() == "swatch blue"
    page.keyboard.press("ArrowRight")
    assert lightbox.locator("figcaption").inner_text() == "swatch green"
    until(page, "() => (img => img.complete && img.naturalWidth === 64)(document.querySelector('#lightbox img'))")
    page.keyboard.press("ArrowLeft")
    assert lightbox.locator("figcaption").inner_text() == "swatch blue"
    page.keyboard.press("Escape")
    lightbox.wait_for(state="hidden")

    page.get_by_label("Search prompts").fill("green")
    until(page, "() => document.querySelectorAll('#feed article').length === 1")
    assert "q=green" in page.url, "the search is kept in the URL"


def test_a_member_edits_a_result_with_one_more_reference(
    page, live_server, worker, owner, make_account, simulator, tmp_path
):
    from tests.test_references import png

    simulator.latency = 0.5
    make_account("crun", name="a crun")
    make_account("gemini", name="b gemini")
    sign_in(page, live_server, owner.username)
    page.get_by_label("Account").select_option(label="b gemini")
    page.wait_for_timeout(300)
    page.get_by_label("Prompt").fill("a paper boat")
    page.get_by_role("button", name="Generate").click()
    page.locator("article.card img").first.wait_for(timeout=30_000)

    page.locator("article.card a.preview").first.click()
    page.locator("dialog#lightbox").get_by_role("link", name="Edit this image").click()
    assert page.locator(".picked img").count() == 1, "the result is already a reference"
    extra = tmp_path / "extra.png"
    extra.write_bytes(png(color="orange"))
    page.locator("#generate-form input[type=file]").set_input_files(str(extra))
    page.get_by_label("Prompt").fill("the paper boat, at sunset")
    page.get_by_role("button", name="Generate").click()
    page.locator("article.card img").first.wait_for(timeout=30_000)
    until(page, "() => document.querySelectorAll('article.card img').length === 2")

    page.locator("article.card a.preview").first.click()
    page.locator("dialog#lightbox").get_by_role("link", name="Details").click()
    page.wait_for_url("**/generations/*")
    made_from = page.locator(".references-list img")
    assert made_from.count() == 2
    until(
        page,
        "() => (img => img.complete && img.naturalWidth === 64)(document.querySelectorAll('.references-list img')[1])",
    )


def test_the_browser_enforces_the_policy(page, live_server, owner, crun_account, csp_violations):
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")
    assert "script-src 'self'" in page.evaluate("() => fetch('/').then(r => r.headers.get('content-security-policy'))")
    from playwright.sync_api import Error

    with pytest.raises(Error, match="Content Security Policy"):
        page.add_script_tag(content="window.inlineRan = true")
    assert page.evaluate("() => window.inlineRan") is None, "an inline script must not run"
    assert csp_violations and "inline script" in csp_violations[0]
    csp_violations.clear()


def test_the_admin_works_under_the_policy(page, live_server, django_user_model, crun_account):
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    sign_in(page, live_server, "root", path="/admin/login/")
    page.wait_for_url(live_server.url + "/admin/")
    page.goto(live_server.url + "/admin/providers/provideraccount/")
    page.locator("#action-toggle").check()  # the admin's own script selects every row
    assert page.locator("input.action-select").first.is_checked()
    page.get_by_role("link", name=crun_account.name).click()
    page.get_by_label("Name").fill("crun, renamed")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(live_server.url + "/admin/providers/provideraccount/")
    assert "crun, renamed" in page.content()


def test_a_member_picks_a_model_and_sees_why_the_job_waits(page, live_server, worker, owner, make_account, simulator):
    simulator.latency = 0.5
    make_account("gemini", name="gemini")
    make_account("crun", faults="+errors=429+retry_after=4+case=browser", name="crun")
    sign_in(page, live_server, owner.username)

    page.get_by_label("Account").select_option(label="crun")
    until(page, "() => document.querySelector('#options').textContent.includes('Pinned to crun')")
    page.wait_for_load_state("networkidle")  # the options may refresh once more; a post meanwhile is refused
    page.get_by_label("Prompt").fill("a kite over the dunes")
    page.get_by_role("button", name="Generate").click()

    waiting = page.locator("article.card .waiting")
    waiting.wait_for(timeout=15_000)
    assert "crun is rate-limiting us; trying again in" in waiting.inner_text()
    assert "attempt 2 of 6" in waiting.inner_text()
    page.locator("article.card img").wait_for(timeout=30_000)
    assert page.locator("article.card .waiting").count() == 0


def test_a_member_adds_results_to_a_board_from_the_lightbox_and_opens_the_board(page, live_server, owner, crun_account):
    from nanoweb.boards.models import Board

    swatches(owner, crun_account)
    Board.objects.create(name="Another board", owner=owner)
    board = Board.objects.create(name="Swatches", owner=owner)
    sign_in(page, live_server, owner.username)
    page.goto(live_server.url + "/gallery?q=swatch")

    page.locator("#feed a[data-lightbox]").first.click()  # newest first: blue
    lightbox = page.locator("dialog#lightbox")
    lightbox.wait_for(state="visible")
    until(page, "() => (img => img.complete && img.naturalWidth === 64)(document.querySelector('#lightbox img'))")
    lightbox.get_by_label("Board", exact=True).select_option(label="Swatches")
    lightbox.get_by_role("button", name="Add to board").click()
    status = lightbox.locator("#lightbox-status")
    status.get_by_text("Added 1 to").wait_for()
    page.keyboard.press("ArrowRight")
    assert lightbox.locator("figcaption").inner_text() == "swatch green"
    lightbox.get_by_role("button", name="Add to board").click()
    status.get_by_text("Added 1 to").wait_for()

    status.get_by_role("link", name="Swatches").click()
    page.wait_for_url(f"**/boards/{board.pk}")
    assert page.locator("#feed article .prompt").all_inner_texts() == ["swatch blue", "swatch green"]


def test_the_studio_watches_several_jobs_finish_with_one_request_a_second(
    page, live_server, worker, owner, make_account
):
    from tests.conftest import start_job

    crun = make_account("crun")
    for n, latency in enumerate((1.5, 2.5, 3.5)):
        start_job(owner, crun, "google/nano-banana", f"watch {n} [sim:latency={latency}]")
    asked = []
    page.on("request", lambda request: asked.append((time.monotonic(), request.url)))
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")
    order = page.locator("article.card").evaluate_all("cards => cards.map(card => card.id)")
    assert page.locator("article.card[data-live]").count() == 3

    until(page, "() => document.querySelectorAll('article.card img').length === 3", timeout=30)
    finished = time.monotonic()
    page.wait_for_timeout(2500)

    assert page.locator("article.card").evaluate_all("cards => cards.map(card => card.id)") == order, "in place"
    assert [pill.inner_text() for pill in page.locator("article.card .pill").all()] == ["Done"] * 3
    live = [at for at, url in asked if "/live/cards" in url]
    assert live, "the page asked its channel"
    watching = finished - live[0]
    assert len(live) <= watching + 1.5, f"{len(live)} requests in {watching:.1f} s: one a second at most"
    assert not [url for _, url in asked if "/card" in url and "/live/" not in url], "no request per card"
    assert not [at for at in live if at > finished + 1.2], "nothing is asked once nothing runs"


def choose_four_images(page) -> None:
    """Images: 4, and wait for the cost line to say so (its swap replaces the Generate button)."""
    before = page.locator("#cost").inner_text()
    page.get_by_label("Images", exact=True).select_option("4")
    wait_for(lambda: page.locator("#cost").inner_text() != before, timeout=5.0, interval=0.05)


def test_the_phone_loop_four_variations_as_one_set_lightbox_download_edit_and_cancel_all(
    page, live_server, worker, owner, crun_account, simulator
):
    simulator.latency = 1.0
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")

    page.get_by_label("Prompt").fill("four paper kites over a beach")
    choose_four_images(page)
    page.get_by_role("button", name="Generate").click()
    kites = page.locator("article.card.set").first
    kites.wait_for()
    until(page, "() => (box => box.top < innerHeight && box.bottom > 0)(document.querySelector('#jobs > article').getBoundingClientRect())", timeout=1.0)  # fmt: skip
    assert page.get_by_label("Images", exact=True).input_value() == "1", "the next submission is one image again"
    assert page.locator("article.card").count() == 1 and kites.locator(".variation").count() == 4, (
        "one card for the set"
    )
    assert kites.get_by_role("button", name="Cancel all").is_visible()
    until(page, "() => document.querySelectorAll('#jobs .variation img').length === 4", timeout=30.0)
    assert kites.locator(".pill").inner_text() == "All 4 made"

    kites.locator("a[data-lightbox]").first.click()
    lightbox = page.locator("dialog#lightbox")
    lightbox.wait_for(state="visible")
    box = lightbox.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
    assert lightbox.get_by_role("button", name="Previous image").is_disabled(), "nothing before the first"
    lightbox.get_by_role("button", name="Next image").click()
    with page.expect_download() as download_info:
        lightbox.get_by_role("link", name="Download").click()
    assert download_info.value.suggested_filename.endswith(".png")
    lightbox.get_by_role("button", name="Close the image viewer").click()
    lightbox.wait_for(state="hidden")
    second = kites.locator("a[data-lightbox]").nth(1)
    # Focus moves on the dialog's close event, a task after it is hidden.
    until(page, f"() => document.activeElement.dataset.pick === '{second.get_attribute('data-pick')}'", timeout=2.0)

    second.click()
    lightbox.get_by_role("link", name="Edit this image").click()
    page.wait_for_url("**/?pick=*")
    assert page.locator("#generate-form ul.picked img").count() == 1, "the studio opens with it as a reference"

    page.locator("#generate-form ul.picked").get_by_role(
        "button", name="Remove earlier result 1"
    ).click()  # crun here takes no references
    simulator.latency = 30.0
    page.get_by_label("Prompt").fill("four slow kites")
    choose_four_images(page)
    page.get_by_role("button", name="Generate").click()
    slow = page.locator("article.card.set", has_text="four slow kites")
    slow.get_by_role("button", name="Cancel all").click()
    until(
        page, "() => document.querySelector('#jobs > article .pill').textContent.includes('0 of 4 made')", timeout=5.0
    )
    assert slow.get_by_role("button", name="Try again: variation 1").is_visible()


def test_a_job_that_finishes_while_the_tab_is_away_shows_in_its_title(
    page, live_server, worker, owner, crun_account, simulator
):
    simulator.latency = 2.0
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")
    title = page.title()
    page.get_by_label("Prompt").fill("a paper lantern on a lake")
    page.get_by_role("button", name="Generate").click()
    page.locator("article.card [data-live], article.card[data-live]").first.wait_for(state="attached")
    # The person switches to another tab: the page now asks every five seconds, not every second.
    page.evaluate(
        "() => { window.away = true; Object.defineProperty(document, 'hidden', {configurable: true, get: () => window.away}); document.dispatchEvent(new Event('visibilitychange')); }"
    )
    until(page, f"() => document.title === '(1) done · ' + {title!r}", timeout=15)
    page.evaluate("() => { window.away = false; document.dispatchEvent(new Event('visibilitychange')); }")
    assert page.title() == title
