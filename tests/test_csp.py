"""A Content-Security-Policy on every page, with nothing inline for it to allow: no script
blocks, no event-handler attributes, no style attributes, in our templates or the admin's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.conftest import ROOT

pytestmark = pytest.mark.portable

TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())


@pytest.mark.parametrize(
    "url, who",
    [("/login", None), ("/", "owner"), ("/gallery", "owner"), ("/prompts", "owner"), ("/credits/review", "staff"),
     ("/admin/", "admin"), ("/healthz", None)],
)  # fmt: skip
def test_every_page_sends_a_policy_that_allows_only_our_own_files(client, request, url, who):
    if who == "admin":
        client = request.getfixturevalue("admin_client")
    elif who:
        client.force_login(request.getfixturevalue(who))
    policy = directives(client.get(url))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["form-action"] == "'self'"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT / "templates")))
def test_templates_hold_no_inline_script_or_style(template: Path):
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "a <script> without src"
    assert not re.search(r"\son[a-z]+\s*=", html), "an on…= event handler"
    assert not re.search(r"\sstyle\s*=", html), "a style attribute"
    assert "<style" not in html, "a <style> block"


def test_htmx_is_told_not_to_inject_styles_or_evaluate_code(owner_client):
    page = owner_client.get(reverse("studio")).text
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page)
    assert config, "htmx reads its configuration from a meta tag, not an inline script"
    assert json.loads(config.group(1)) == {"includeIndicatorStyles": False, "allowEval": False}
