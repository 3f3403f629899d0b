"""Single sign-on with the team's OpenID Connect provider: a real one (tests/idp.py, Authlib) on
loopback, with discovery, the authorization-code flow with PKCE, RS256-signed ID tokens and userinfo.
The test client plays the browser: it starts at our sign-in page, signs in on the provider's page
over HTTP, and follows the provider's redirect back to our callback."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.test import Client

from nanoweb.credits import ledger
from nanoweb.credits.models import Budget
from nanoweb.sso.models import SignInPolicy
from tests.conftest import PASSWORD
from tests.test_pages import AXE, AXE_PATH, SERIOUS

CALLBACK = "http://testserver/sso/oidc/callback"


@pytest.fixture
def sso(idp, settings, db):
    """The studio configured for the test provider: addresses at example.com may sign in."""
    idp.reset()
    idp.allow_redirect(CALLBACK)
    settings.OIDC_ISSUER = idp.issuer
    settings.OIDC_CLIENT_ID = idp.client.client_id
    settings.OIDC_CLIENT_SECRET = idp.client.client_secret
    settings.OIDC_NAME = "Team IdP"
    settings.OIDC_ALLOWED_DOMAINS = ["example.com"]
    settings.OIDC_REQUIRED_GROUP = ""
    settings.OIDC_SCOPES = ["openid", "email", "profile"]
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    form_action = [*directives["form-action"], idp.issuer]  # as settings.py adds OIDC_ISSUER's origin
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {**directives, "form-action": form_action}}
    return idp


def sign_in_with_sso(client: Client, idp, email: str, password: str = "idp-password", next: str = ""):
    """Press "Sign in with Team IdP", sign in on the provider's page, come back: the page we land on."""
    page = client.get("/login", {"next": next} if next else {})
    assert "Sign in with Team IdP" in page.text
    start = client.post("/sso/oidc/login", {"next": next})
    assert start.status_code == 302 and start["Location"].startswith(f"{idp.issuer}/authorize?"), start
    query = dict(parse_qsl(urlsplit(start["Location"]).query))
    assert query["code_challenge_method"] == "S256" and query["code_challenge"], "PKCE"
    with requests.Session() as browser:
        assert "Test identity provider" in browser.get(start["Location"], timeout=10).text
        answer = browser.post(start["Location"], data={"email": email, "password": password},
                              allow_redirects=False, timeout=10)  # fmt: skip
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"http://testserver{back.path}" == CALLBACK
    return client.get(back.path, dict(parse_qsl(back.query)), follow=True)


def signed_in_as(client: Client):
    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id) if user_id else None


def nothing_stored(users_before: int) -> bool:
    return (
        get_user_model().objects.count() == users_before
        and not SocialAccount.objects.exists()
        and not EmailAddress.objects.exists()
    )


def test_without_a_provider_configured_the_sign_in_page_has_only_passwords(client, db):
    page = client.get("/login")
    assert page.status_code == 200 and "Sign in with" not in page.text
    assert client.post("/sso/oidc/login").status_code == 404


def test_a_first_sign_in_from_an_allowed_domain_creates_the_member_with_the_default_budget(client, sso, settings):
    sso.add_user("ada@example.com", name="Ada Lovelace")
    landed = sign_in_with_sso(client, sso, "ada@example.com")

    assert landed.status_code == 200 and landed.redirect_chain[-1][0] == "/"
    member = signed_in_as(client)
    assert member is not None and member.email == "ada@example.com"
    assert not member.has_usable_password() and not member.is_staff
    assert member.get_username() in landed.text, "the studio, signed in"
    assert not Budget.objects.filter(user=member).exists()
    assert ledger.budget_of(member).amount == settings.DEFAULT_BUDGET
    assert f"You have {ledger.money(settings.DEFAULT_BUDGET)} left" in landed.text

    client.post("/logout")
    sign_in_with_sso(client, sso, "ada@example.com")
    assert signed_in_as(client) == member, "the next sign-in is the same member"
    assert get_user_model().objects.count() == 1


def test_single_sign_on_returns_to_the_page_that_asked_for_it(client, sso):
    sso.add_user("ada@example.com")
    landed = sign_in_with_sso(client, sso, "ada@example.com", next="/gallery")
    assert landed.redirect_chain[-1][0] == "/gallery" and landed.status_code == 200


def test_an_address_outside_the_allowed_domains_is_refused_and_nothing_is_stored(client, sso):
    sso.add_user("eve@elsewhere.org")
    refused = sign_in_with_sso(client, sso, "eve@elsewhere.org")

    assert refused.status_code == 403 and signed_in_as(client) is None
    assert "addresses at elsewhere.org cannot sign in to this studio" in refused.text
    assert 'name="password"' in refused.text, "the sign-in page, with the password form"
    assert nothing_stored(0)


def test_an_unverified_email_is_refused(client, sso):
    sso.add_user("ada@example.com", verified=False)
    refused = sign_in_with_sso(client, sso, "ada@example.com")

    assert refused.status_code == 403 and signed_in_as(client) is None
    assert "Team IdP did not confirm an email address" in refused.text
    assert nothing_stored(0)


def test_a_required_group_admits_its_members_only(client, sso, settings):
    settings.OIDC_REQUIRED_GROUP = "studio"
    settings.OIDC_SCOPES = ["openid", "email", "profile", "groups"]
    sso.add_user("ada@example.com", groups=["studio", "staff"])
    sso.add_user("bob@example.com", groups=["sales"])

    refused = sign_in_with_sso(client, sso, "bob@example.com")
    assert refused.status_code == 403 and "is not in the group “studio”" in refused.text
    assert nothing_stored(0)

    sign_in_with_sso(client, sso, "ada@example.com")
    assert signed_in_as(client).email == "ada@example.com"


def test_invited_only_refuses_newcomers_and_lets_existing_members_in(client, sso, owner):
    SignInPolicy.objects.update_or_create(pk=1, defaults={"invited_only": True})
    owner.email = "Olivia@Example.com"
    owner.save()
    sso.add_user("olivia@example.com")
    sso.add_user("newcomer@example.com")

    refused = sign_in_with_sso(client, sso, "newcomer@example.com")
    assert refused.status_code == 403 and signed_in_as(client) is None
    assert "by invitation only, and no member has the address newcomer@example.com" in refused.text
    assert nothing_stored(1)

    sign_in_with_sso(client, sso, "olivia@example.com")
    assert signed_in_as(client) == owner, "the member staff added, matched by address"
    assert owner.check_password(PASSWORD), "their password still works too"
    assert SocialAccount.objects.get().user == owner


def test_a_disabled_member_cannot_sign_in_with_the_provider(client, sso, owner):
    owner.email, owner.is_active = "olivia@example.com", False
    owner.save()
    sso.add_user("olivia@example.com")
    refused = sign_in_with_sso(client, sso, "olivia@example.com")
    assert refused.status_code == 403 and "This account is disabled" in refused.text
    assert signed_in_as(client) is None and not SocialAccount.objects.exists()


def test_staff_switch_self_sign_up_off_in_the_admin(client, sso, staff):
    client.force_login(staff)
    changelist = client.get("/admin/sso/signinpolicy/")
    assert changelist.status_code == 200 and "Anyone allowed may join" in changelist.text
    form = {"form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": "1", "form-0-invited_only": "on",
            "_save": "Save"}  # fmt: skip
    assert client.post("/admin/sso/signinpolicy/", form).status_code == 302
    assert SignInPolicy.current().invited_only
    client.post("/logout")

    sso.add_user("newcomer@example.com")
    assert sign_in_with_sso(client, sso, "newcomer@example.com").status_code == 403


@pytest.mark.parametrize("fault", ["wrong_audience", "expired", "bad_signature", "other_subject"])
def test_an_id_token_that_fails_verification_is_refused_and_nothing_is_stored(client, sso, fault):
    sso.add_user("ada@example.com")
    sso.fault = fault
    refused = sign_in_with_sso(client, sso, "ada@example.com")

    assert refused.status_code == 403 and signed_in_as(client) is None
    assert "Signing in with Team IdP failed: its answer could not be verified" in refused.text
    assert nothing_stored(0)


def test_a_forged_callback_without_our_state_is_refused(client, sso):
    refused = client.get("/sso/oidc/callback", {"code": "made-up", "state": "made-up"})
    assert refused.status_code == 403 and "could not be verified" in refused.text
    assert nothing_stored(0)


def test_a_provider_that_cannot_be_reached_is_said_so_on_the_sign_in_page(client, sso, settings):
    settings.OIDC_ISSUER = "http://127.0.0.1:9"  # nothing listens on the discard port
    answer = client.post("/sso/oidc/login", {"next": ""})
    assert answer.status_code == 503 and "Team IdP cannot be reached just now" in answer.text
    assert client.get("/sso/oidc/login").url == "/login", "only the button's POST starts a sign-in"


def test_the_password_throttle_does_not_lock_out_single_sign_on(client, sso, owner):
    owner.email = "olivia@example.com"
    owner.save()
    sso.add_user("olivia@example.com")
    for n in range(5):
        client.post("/login", {"username": owner.username, "password": f"guess-{n}"})
    locked = client.post("/login", {"username": owner.username, "password": PASSWORD})
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert "Sign in with Team IdP" in locked.text, "the locked-out page still offers single sign-on"

    sign_in_with_sso(client, sso, "olivia@example.com")
    assert signed_in_as(client) == owner


@pytest.mark.browser
def test_a_newcomer_signs_in_through_the_providers_page_in_a_browser(page, live_server, sso, settings):
    sso.allow_redirect(f"{live_server.url}/sso/oidc/callback")
    sso.add_user("grace@example.com", password="idp-secret-1", name="Grace Hopper")
    page.context.route(
        live_server.url + AXE_PATH, lambda route: route.fulfill(path=AXE, content_type="text/javascript")
    )
    page.goto(live_server.url + "/")
    assert "/login" in page.url
    page.add_script_tag(url=AXE_PATH)
    for scheme in ["light", "dark"]:
        page.emulate_media(color_scheme=scheme)
        assert page.evaluate(SERIOUS) == [], f"the sign-in page with its button, {scheme}"

    page.get_by_role("button", name="Sign in with Team IdP").click()
    page.wait_for_url(f"{sso.issuer}/authorize?**")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password").fill("idp-secret-1")
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url(live_server.url + "/")
    member = get_user_model().objects.get(email="grace@example.com")
    assert page.locator(".whoami").inner_text() == member.get_username()
    assert page.get_by_label("Prompt").is_visible(), "the studio, ready to use"
