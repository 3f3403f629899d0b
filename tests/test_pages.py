"""Every member and staff page in a real browser, at a desktop's 1400×900 and a phone's 390×844,
light and dark: axe-core finds no serious or critical accessibility problem, and no page is
wider than a phone's screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.demo import STATUS, pages, seed, sign_in_as, visit

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_PATH = "/__axe__/axe.min.js"
SIZES = {"desktop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}
# Staff see what members see, and these pages, or these differently (a failure's provider detail).
STAFF_ALSO = {"credits", "person", "providers", "team", "detail-failed", "tokens", "vendor-models"}
HEADER_CONTROLS = """() => Object.fromEntries([...document.querySelectorAll("header a, header button")]
  .map(e => [e.innerText.replace("◐", "").replace(/\\s+/g, " ").trim(), [e.getBoundingClientRect().left, e.getBoundingClientRect().right]]))"""
LOAD_ALL_IMAGES = """async () => {
  const images = [...document.images];
  images.forEach(image => { image.loading = "eager"; });
  await Promise.all(images.map(image => image.decode().catch(() => null)));
}"""
# The page's width, and the element that reaches furthest right (to say what to fix).
WIDTH = """() => {
  let widest = null, right = 0;
  for (const element of document.body.querySelectorAll("*")) {
    const edge = element.getBoundingClientRect().right;
    if (edge > right && !element.closest(".table-scroll, .visually-hidden")) { right = edge; widest = element; }
  }
  const name = widest ? widest.tagName.toLowerCase() + (widest.className ? "." + widest.className : "") : "";
  return [document.documentElement.scrollWidth, name];
}"""
SERIOUS = """async () => {
  // label-content-name-mismatch is experimental in axe (off unless asked for): a link whose name
  // does not hold its visible words fails speech input ("click Failed …").
  const results = await axe.run(document, {resultTypes: ["violations"], rules: {"label-content-name-mismatch": {enabled: true}}});
  return results.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({rule: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" "))}));
}"""


@pytest.fixture
def demo(transactional_db, make_account, settings):
    settings.DEBUG = False  # the error pages as in production
    settings.ROOT_URLCONF = "tests.urls"  # with a URL that fails, for the 500 page
    return seed(make_account("crun"), password=PASSWORD)


def test_no_page_has_a_serious_accessibility_problem(new_page, live_server, demo):
    page = new_page()
    errors: list[str] = []  # what the browser's console reports as an error, page by page
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on("console", lambda message: message.type == "error" and errors.append(f"{page.url}: {message.text}"))
    # axe arrives as one more script of this site, so the Content-Security-Policy stays as it is.
    axe = AXE.read_bytes()
    page.context.route(
        live_server.url + AXE_PATH, lambda route: route.fulfill(body=axe, content_type="text/javascript")
    )
    found = {}
    for who, user in [("nobody", None), ("member", demo.member), ("staff", demo.staff)]:
        sign_in_as(page, live_server.url, user)
        for name, path in pages(demo, who).items():
            if who == "staff" and name not in STAFF_ALSO:
                continue  # the member's page, with two more links in the navigation
            visit(page, live_server.url, name, path)
            page.add_script_tag(url=AXE_PATH)
            # One load per page: the size and the colour scheme change in place, as they do when
            # a window is resized or the system switches to dark.
            for size, viewport in SIZES.items():
                page.set_viewport_size(viewport)
                for scheme in ["light", "dark"]:
                    page.emulate_media(color_scheme=scheme)
                    found[f"{size} {scheme}, {who} {path}"] = page.evaluate(SERIOUS)
    # The gallery's states that need a click: images selected (the selection bar) and the open lightbox.
    visit(page, live_server.url, "gallery", "/gallery")
    page.add_script_tag(url=AXE_PATH)
    page.locator("input[name=pick][form=selection]").first.check()
    page.locator("#feed a[data-lightbox]").first.click()
    page.locator("dialog#lightbox").wait_for(state="visible")
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        for scheme in ["light", "dark"]:
            page.emulate_media(color_scheme=scheme)
            found[f"{size} {scheme}, staff gallery with a selection and the lightbox open"] = page.evaluate(SERIOUS)
    # The error pages' own status is reported as a failed load; nothing else may be.
    expected = [f"status of {status} (" for status in STATUS.values()]
    assert not [error for error in errors if not any(status in error for status in expected)], errors
    problems = {url: violations for url, violations in found.items() if violations}
    summary = "\n".join(
        f"{url}: {v['rule']} ({v['impact']}) on {len(v['nodes'])}: {', '.join(v['nodes'][:4])}"
        for url, violations in problems.items()
        for v in violations
    )
    assert not problems, f"{sum(len(v) for v in problems.values())} serious rule hits:\n{summary}"


@pytest.mark.parametrize("who", ["member", "staff"])
def test_no_page_is_wider_than_a_phone(new_page, live_server, demo, who):
    page = new_page(viewport=SIZES["phone"])
    widths = {}
    for viewer in ["nobody", who]:
        sign_in_as(page, live_server.url, getattr(demo, viewer, None))
        for name, path in pages(demo, viewer).items():
            visit(page, live_server.url, name, path)
            page.evaluate(LOAD_ALL_IMAGES)  # a picture's size is known only once it has loaded
            widths[f"{name} {path}"] = page.evaluate(WIDTH)
    too_wide = {path: width for path, width in widths.items() if width[0] > SIZES["phone"]["width"]}
    assert not too_wide, f"wider than the phone's 390 px (width, widest element): {too_wide}"

    visit(page, live_server.url, "studio", "/")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to the content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    header = page.evaluate(HEADER_CONTROLS)
    staff_links = ["Team", "Credits", "Providers", "Admin"] if who == "staff" else []
    links = ["nanoweb", "Studio", "Gallery", "Boards", "Prompts", "API", *staff_links, "Colours: Auto", "Sign out"]
    assert sorted(header) == sorted(links), header
    assert all(0 <= left and right <= SIZES["phone"]["width"] for left, right in header.values()), header


def test_a_rating_keeps_the_keyboard_focus(new_page, live_server, demo):
    """The rating's form is swapped for the new state; the keyboard stays on the star pressed."""
    page = new_page()
    sign_in_as(page, live_server.url, demo.member)
    visit(page, live_server.url, "gallery", "/gallery")
    page.get_by_role("button", name="Rate 3 of 5").first.focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Your rating: 3 of 5 (press to clear)").wait_for()
    assert (
        page.evaluate("() => document.activeElement.getAttribute('aria-label')")
        == "Your rating: 3 of 5 (press to clear)"
    )
