"""Screenshots of every member and staff page, for reviewers: at a desktop's 1400×900 and a phone's
390×844, light and dark.

    .venv/bin/python -m tests.screenshots [FOLDER]      (default: var/screenshots)

Seeds a demo team and its work (`tests/demo.py`) in a throw-away database, serves the app on
loopback in production's error mode (DEBUG off: the styled 403, 404 and 500 pages), and saves one
full-page PNG per page, size, scheme and person: `phone-dark-member-gallery.png`. It takes about
a minute; nothing outside FOLDER and a temporary folder is touched."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"desktop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}
CHROMIUM = "/usr/bin/chromium"
LOAD_ALL_IMAGES = """async () => {
  const images = [...document.images];
  images.forEach(image => { image.loading = "eager"; });
  await Promise.all(images.map(image => image.decode().catch(() => null)));
}"""


def main(folder: Path) -> None:
    data = tempfile.TemporaryDirectory(prefix="nanoweb-screenshots-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["NANOWEB_DATA_DIR"] = data.name
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM calls beside Playwright's event loop
    import django

    django.setup()
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.test.testcases import LiveServerThread
    from django.test.utils import override_settings

    from nanoweb.providers.models import ProviderAccount
    from nanoweb.providers.registry import ADAPTERS
    from nanoweb.providers.simulator import base_url_for
    from nanoweb.providers.simulator.server import Simulator
    from tests.demo import pages, seed, sign_in_as, visit

    call_command("migrate", verbosity=0)
    simulator = Simulator(api_key="sim-key").start()  # the credit review asks it for balances
    accounts = [
        ProviderAccount.objects.create(
            kind=kind,
            name=f"{adapter.label} (simulator)",
            api_key="sim-key",
            base_url=base_url_for(simulator.base_url, kind, adapter.default_base_url),
        )
        for kind, adapter in ADAPTERS.items()
    ]
    demo = seed(accounts[0], password="screenshots-only")
    # The 404 and 500 pages as in production; tests.urls adds /broken, which fails on purpose.
    override_settings(DEBUG=False, ROOT_URLCONF="tests.urls").enable()
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # the 404 and 500 are wanted
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here

    server = LiveServerThread("127.0.0.1", StaticFilesHandler)  # static files from the source, as in tests
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    base_url = f"http://127.0.0.1:{server.port}"

    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    started, count = time.monotonic(), 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for size, viewport in SIZES.items():
            for scheme in ["light", "dark"]:
                context = browser.new_context(viewport=viewport, color_scheme=scheme)
                page = context.new_page()
                for who in ["nobody", "member", "staff"]:
                    sign_in_as(page, base_url, getattr(demo, who, None))
                    for name, path in pages(demo, who).items():
                        visit(page, base_url, name, path)
                        page.evaluate(LOAD_ALL_IMAGES)  # a full-page shot shows what lies below the fold
                        page.screenshot(path=folder / f"{size}-{scheme}-{who}-{name}.png", full_page=True)
                        count += 1
                    if who == "member":  # the lightbox, open on the gallery's first image
                        visit(page, base_url, "gallery", "/gallery")
                        page.locator("#feed a[data-lightbox]").first.click()
                        page.locator("#lightbox [data-lightbox-stars] button").first.wait_for()
                        page.evaluate(LOAD_ALL_IMAGES)
                        page.screenshot(path=folder / f"{size}-{scheme}-{who}-lightbox.png")
                        count += 1
                context.close()
        browser.close()
    server.terminate()
    simulator.stop()
    data.cleanup()
    print(f"{count} screenshots in {folder} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "var" / "screenshots")
