"""A member at work in a real browser, at a laptop's and a phone's size: editing keeps the frame,
Generate stays in reach, routing is Automatic unless chosen, the budget line follows refunds, the
gallery opens on finished images, boards are made from the picker, and the lightbox rates and counts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import start_job, store_result, succeed
from tests.test_browser import sign_in, swatches, until

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
IN_VIEW = """selector => (box => box.top >= 0 && box.bottom <= innerHeight && box.left >= 0 && box.right <= innerWidth)
  (document.querySelector(selector).getBoundingClientRect())"""


def finished(owner, account, prompt: str, **options):
    from tests.test_references import png

    [job] = start_job(owner, account, "google/nano-banana-2", prompt, **options)
    store_result(job, png(color="teal"))
    succeed(job)
    return job


def test_edit_this_image_keeps_its_shape_and_size_and_focuses_the_prompt_beside_it(
    new_page, live_server, owner, crun_account
):
    harbour = finished(owner, crun_account, "a harbour at night", aspect_ratio="16:9", resolution="2K")
    finished(owner, crun_account, "a later square one", aspect_ratio="1:1", resolution="1K")
    page = new_page(viewport=LAPTOP)
    sign_in(page, live_server, owner.username)
    page.goto(live_server.url + harbour.get_absolute_url())

    page.get_by_role("link", name="Edit this image").click()
    page.wait_for_url("**/?pick=*")
    assert page.get_by_label("Aspect ratio").input_value() == "16:9"
    assert page.get_by_label("Resolution").input_value() == "2K"
    assert page.get_by_label("Account").input_value() == "auto"
    assert page.evaluate("() => document.activeElement.id") == "id_prompt"
    assert page.get_by_label("Prompt").input_value() == ""
    assert page.evaluate(IN_VIEW, ".prompt-with-sources .picked img"), "the image edited shows beside the prompt"

    page.goto(live_server.url + f"/?from={harbour.pk}")  # Use this prompt: the same frame and words
    assert page.get_by_label("Prompt").input_value() == "a harbour at night"
    assert page.get_by_label("Aspect ratio").input_value() == "16:9"
    assert page.evaluate("() => document.activeElement.id") == "id_prompt"


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_generate_its_cost_and_the_budget_are_in_view_while_one_writes(
    new_page, live_server, owner, crun_account, viewport
):
    from nanoweb.credits.models import Budget

    Budget.objects.create(user=owner, amount=Decimal("10"), period="month")
    finished(owner, crun_account, "an earlier result", aspect_ratio="16:9")
    page = new_page(viewport=viewport)
    sign_in(page, live_server, owner.username)
    page.goto(live_server.url + "/?pick=" + str(owner.generation_set.get().pk))  # a reference makes the form taller
    page.get_by_label("Prompt").fill("a long prompt\n" * 12)
    assert page.get_by_role("button", name="Generate").is_visible()
    assert page.evaluate(IN_VIEW, "#generate-actions button[type=submit]")
    assert page.evaluate(IN_VIEW, "#cost"), page.locator("#cost").bounding_box()
    assert "You have 9.933 USD left this month" in page.locator("#cost").inner_text()  # 10 less the result's
    assert page.evaluate(IN_VIEW, "#generate-actions kbd")


def test_a_pinned_account_says_so_and_the_next_visit_routes_automatically(
    page, live_server, worker, owner, make_account, simulator
):
    simulator.latency = 0.3
    make_account("crun", name="crun.ai (simulator)")
    make_account("gemini", name="Gemini API (simulator)")
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")
    assert "Automatic tries the best account" in page.locator("#options").inner_text()

    page.get_by_label("Account").select_option(label="Gemini API (simulator)")
    until(page, "() => document.querySelector('#options').textContent.includes('Pinned to Gemini API (simulator)')")
    page.wait_for_load_state("networkidle")
    page.get_by_label("Prompt").fill("a pinned lantern")
    page.get_by_role("button", name="Generate").click()
    page.locator("article.card img").wait_for(timeout=30_000)

    page.reload()
    assert page.get_by_label("Account").input_value() == "auto", "routing is Automatic again"
    assert "Pinned" not in page.locator("#options").inner_text()


def test_the_budget_line_gives_back_what_cancel_all_refunds(page, live_server, worker, owner, crun_account, simulator):
    from nanoweb.credits.models import Budget

    Budget.objects.create(user=owner, amount=Decimal("10"), period="month")
    simulator.latency = 30.0
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")
    left = page.locator("#budget-left").inner_text()
    assert "10.00 USD" in left
    page.get_by_label("Prompt").fill("four slow kites")
    page.get_by_label("Images", exact=True).select_option("4")
    until(page, "() => document.querySelector('#cost strong').textContent.startsWith('0.268')")
    page.get_by_role("button", name="Generate").click()
    kites = page.locator("article.card.set")
    kites.wait_for()
    until(page, "() => document.querySelector('#budget-left').textContent.includes('9.73')")  # reserved

    kites.get_by_role("button", name="Cancel all").click()
    until(page, "() => document.querySelector('#jobs > article .pill').textContent.includes('0 of 4 made')", timeout=10)
    until(page, f"() => document.querySelector('#budget-left').textContent === {left!r}", timeout=5)


def test_a_teammates_gallery_opens_on_finished_images(page, live_server, owner, teammate, crun_account):
    from nanoweb.providers.base import ErrorKind, ProviderError
    from nanoweb.studio.models import Generation

    finished(owner, crun_account, "a finished kite")
    [failed] = start_job(owner, crun_account, "google/nano-banana-2", "a failed kite")
    failed.fail(Generation.Status.QUEUED, ProviderError(ErrorKind.GENERATION_FAILED, "raw provider text"))
    start_job(owner, crun_account, "google/nano-banana-2", "a queued kite")
    sign_in(page, live_server, teammate.username)
    page.goto(live_server.url + "/gallery")

    assert page.locator("#feed article .prompt").all_inner_texts() == ["a finished kite"]
    assert "raw provider text" not in page.content()
    status = page.get_by_label("Status")
    options = status.locator("option").evaluate_all("options => options.map(option => option.textContent)")
    assert options == ["Done", "Failed (mine)", "Canceled (mine)", "Running (mine)"], (
        "a member's words, finished images first"
    )


def test_new_board_from_the_picker_puts_the_image_on_it(page, live_server, owner, crun_account):
    from nanoweb.boards.models import Board

    swatches(owner, crun_account)
    sign_in(page, live_server, owner.username)
    page.goto(live_server.url + "/gallery?q=swatch")
    page.locator("#feed article").first.get_by_role("link", name="+ Board").click()
    picker = page.locator("#feed form.add-to-board")
    assert picker.get_by_label("Board", exact=True).input_value() == "new", "no board yet: New board… is chosen"
    picker.get_by_label("Name of the new board").fill("Swatches")
    picker.get_by_role("button", name="Add").click()
    page.get_by_text("Added 1 to").wait_for()
    board = Board.objects.get(name="Swatches")
    assert [job.prompt for job in board.items.all()] == ["swatch blue"]

    # With a board, New board… is still in the picker; its name is asked for when chosen.
    page.locator("#feed article").nth(1).get_by_role("link", name="+ Board").click()
    second = page.locator("#feed form.add-to-board")
    assert not second.get_by_label("Name of the new board").is_visible()
    second.get_by_label("Board", exact=True).select_option("new")
    assert second.get_by_label("Name of the new board").is_visible()


def test_the_lightbox_counts_and_rates_and_the_card_follows(page, live_server, owner, crun_account):
    swatches(owner, crun_account)
    sign_in(page, live_server, owner.username)
    page.goto(live_server.url + "/gallery?q=swatch")
    page.locator("#feed a[data-lightbox]").first.click()
    lightbox = page.locator("dialog#lightbox")
    lightbox.wait_for(state="visible")
    assert lightbox.locator("[data-lightbox-position]").inner_text() == "1 of 3"
    page.keyboard.press("ArrowRight")
    assert lightbox.locator("[data-lightbox-position]").inner_text() == "2 of 3"
    assert lightbox.locator("figcaption").inner_text() == "swatch green"

    lightbox.get_by_role("button", name="Rate 4 of 5").click()
    lightbox.get_by_role("button", name="Your rating: 4 of 5 (press to clear)").wait_for()
    green = page.locator("#feed article", has_text="swatch green")
    green.get_by_role("button", name="Your rating: 4 of 5 (press to clear)").wait_for()
    assert page.evaluate(
        "() => getComputedStyle(document.querySelector('#lightbox'), '::backdrop').backgroundColor"
    ) in ("rgb(11, 12, 15)",), "an opaque backdrop"


def test_on_a_phone_the_lightbox_shows_its_actions_without_scrolling_and_swipes(
    new_page, live_server, owner, crun_account
):
    swatches(owner, crun_account)
    page = new_page(viewport=PHONE, has_touch=True)
    sign_in(page, live_server, owner.username)
    page.goto(live_server.url + "/gallery?q=swatch")
    page.locator("#feed a[data-lightbox]").first.click()
    lightbox = page.locator("dialog#lightbox")
    lightbox.wait_for(state="visible")
    lightbox.locator("[data-lightbox-stars] button").first.wait_for()
    assert page.evaluate("() => (d => d.scrollHeight <= d.clientHeight)(document.querySelector('#lightbox'))")
    assert page.evaluate(IN_VIEW, "#lightbox [data-lightbox-detail]")
    page.evaluate("""() => {
      const box = document.querySelector('#lightbox');
      const at = x => [new Touch({identifier: 1, target: box, clientX: x, clientY: 400})];
      box.dispatchEvent(new TouchEvent('touchstart', {touches: at(300), changedTouches: at(300), bubbles: true}));
      box.dispatchEvent(new TouchEvent('touchend', {touches: [], changedTouches: at(120), bubbles: true}));
    }""")
    assert lightbox.locator("[data-lightbox-position]").inner_text() == "2 of 3"


def test_the_header_switches_the_colour_scheme_from_the_first_paint(new_page, live_server, owner):
    page = new_page(viewport=PHONE, color_scheme="light")
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")
    background = "() => getComputedStyle(document.documentElement).backgroundColor"
    assert page.evaluate(background) == "rgb(246, 247, 249)"
    page.get_by_role("button", name="Colours: Auto").click()
    page.get_by_role("button", name="Colours: Dark").wait_for()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    assert page.evaluate(background) == "rgb(15, 17, 21)"
    page.goto(live_server.url + "/gallery")  # kept, and drawn dark by the server's page itself
    assert page.evaluate(background) == "rgb(15, 17, 21)"
    page.get_by_role("button", name="Colours: Dark").click()
    page.get_by_role("button", name="Colours: Light").wait_for()
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(background) == "rgb(246, 247, 249)", "light even where the system is dark"
    page.get_by_role("button", name="Colours: Light").click()
    page.get_by_role("button", name="Colours: Auto").wait_for()
    assert page.evaluate(background) == "rgb(15, 17, 21)", "auto follows the system again"


TEXT_FITS = """select => {
  const style = getComputedStyle(select);
  const context = document.createElement("canvas").getContext("2d");
  context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20;  // the arrow
  return [...select.options].map(option => [option.text, context.measureText(option.text).width <= room]);
}"""


def test_model_and_account_names_are_not_cut_beside_each_other(page, live_server, owner, make_account):
    for kind, name in [("crun", "crun.ai (simulator)"), ("nanophoto", "nanophoto.ai (simulator)"),
                       ("gemini", "Gemini API (simulator)")]:  # fmt: skip
        make_account(kind, name=name)
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")
    for label in ["Model", "Account"]:
        fits = page.get_by_label(label, exact=True).evaluate(TEXT_FITS)
        assert all(fit for _, fit in fits), f"{label}: {fits}"


def test_a_set_card_is_as_tall_as_its_tiles_beside_a_tall_card(page, live_server, owner, crun_account):
    from nanoweb.providers.simulator.render import image

    [tall] = start_job(owner, crun_account, "google/nano-banana-2", "a tall lighthouse", aspect_ratio="9:16")
    store_result(tall, image("tall", 432, 768))
    succeed(tall)
    pair = start_job(owner, crun_account, "google/nano-banana-2", "two kites", count=2)
    for job in pair:
        store_result(job, image("kite", 640, 640))
        succeed(job)
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")
    heights = page.locator("article.card.set").evaluate(
        "card => [card.getBoundingClientRect().height, [...card.children].reduce((sum, part) => sum + part.getBoundingClientRect().height, 0)]"
    )
    tall_card = page.locator("article.card", has_text="a tall lighthouse").bounding_box()
    assert tall_card["height"] > heights[0] + 100, "the tall card is beside it, taller"
    assert abs(heights[0] - heights[1]) <= 3, f"no empty area under the tiles: {heights}"


def test_uploaded_references_show_as_thumbnails_each_with_its_own_remove(
    page, live_server, owner, crun_account, tmp_path
):
    from tests.test_references import png

    files = []
    for color in ["red", "blue"]:
        files.append(tmp_path / f"{color}.png")
        files[-1].write_bytes(png(color=color))
    sign_in(page, live_server, owner.username)
    page.wait_for_url(live_server.url + "/")
    page.locator("#generate-form input[type=file]").set_input_files([str(path) for path in files])
    uploads = page.locator("#uploads")
    assert uploads.locator("img").count() == 2
    until(
        page,
        "() => [...document.querySelectorAll('#uploads img')].every(img => img.complete && img.naturalWidth === 64)",
    )
    uploads.get_by_role("button", name="Remove red.png").click()
    assert uploads.locator("img").evaluate_all("images => images.map(image => image.alt)") == ["blue.png"]
    assert page.evaluate(
        "() => [...document.querySelector('#generate-form input[type=file]').files].map(f => f.name)"
    ) == ["blue.png"]
