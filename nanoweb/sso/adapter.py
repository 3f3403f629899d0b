"""Who may sign in with the team's OpenID Connect provider, and as whom.

allauth calls `pre_social_login` once the provider's answer is verified and before it writes
anything: every rule is checked there, so that a refused sign-in stores nothing. The provider
itself comes from settings (OIDC_*), never from database rows."""

from __future__ import annotations

import logging

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from allauth.socialaccount.providers.base.constants import AuthError
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest
from django.shortcuts import render

from nanoweb.sso.models import SignInPolicy

PROVIDER_ID = "oidc"
log = logging.getLogger(__name__)


def configured_app() -> SocialApp | None:
    if not settings.OIDC_ISSUER:
        return None
    return SocialApp(
        provider="openid_connect",
        provider_id=PROVIDER_ID,
        name=settings.OIDC_NAME,
        client_id=settings.OIDC_CLIENT_ID,
        secret=settings.OIDC_CLIENT_SECRET,
        settings={"server_url": settings.OIDC_ISSUER, "scope": settings.OIDC_SCOPES, "oauth_pkce_enabled": True},
    )


def refusal(request: HttpRequest, message: str) -> ImmediateHttpResponse:
    """The sign-in page again, saying why (status 403), as the password lockout does."""
    context = {"form": AuthenticationForm(request), "sso_refusal": message, "next": ""}
    return ImmediateHttpResponse(render(request, "registration/login.html", context, status=403))


def claims_of(sociallogin: SocialLogin) -> dict:
    """The ID token's claims with the userinfo answer's over them (both were verified or fetched with our keys)."""
    data = sociallogin.account.extra_data
    return {**data.get("id_token", {}), **data.get("userinfo", {})}


def groups_of(claims: dict) -> set[str]:
    value = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return {str(group) for group in value}


def rule_broken(claims: dict) -> str:
    """Why this person may not sign in whoever they are here, or ''."""
    email = str(claims.get("email") or "")
    if not email or claims.get("email_verified") not in (True, "true"):
        return (
            f"{settings.OIDC_NAME} did not confirm an email address for your account, so it cannot sign you in "
            "here. Ask its administrator to verify your address, or sign in with a password."
        )
    domain = email.rpartition("@")[2].lower()
    allowed = settings.OIDC_ALLOWED_DOMAINS
    if allowed and "*" not in allowed and domain not in allowed:
        return (
            f"Sign-in refused: addresses at {domain} cannot sign in to this studio. Use your team's account, "
            "or ask an admin."
        )
    if settings.OIDC_REQUIRED_GROUP and settings.OIDC_REQUIRED_GROUP not in groups_of(claims):
        return (
            f"Sign-in refused: {email} is not in the group “{settings.OIDC_REQUIRED_GROUP}” that this studio "
            "requires. Ask an admin to add you to it."
        )
    return ""


class TeamAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request: HttpRequest, provider=None, client_id=None) -> list[SocialApp]:
        app = configured_app()
        if (
            app is None
            or provider not in (None, app.provider, app.provider_id)
            or client_id not in (None, app.client_id)
        ):
            return []
        return [app]

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        claims = claims_of(sociallogin)
        data = sociallogin.account.extra_data
        if "userinfo" in data and data["userinfo"].get("sub") != data.get("id_token", {}).get("sub"):
            log.warning("single sign-on refused: userinfo is about another subject than the ID token")
            raise refusal(request, f"Signing in with {settings.OIDC_NAME} failed: its answer could not be verified.")
        if message := rule_broken(claims):
            raise refusal(request, message)
        email = claims["email"]
        if sociallogin.is_existing:
            user = sociallogin.user
        else:
            # A member staff added (or who signed in with a password) is the same person with the same address.
            matches = list(get_user_model().objects.filter(email__iexact=email)[:2])
            if len(matches) > 1:
                raise refusal(request, f"Several members here have the address {email}: ask an admin to sort it out.")
            user = matches[0] if matches else None
        if user is None and SignInPolicy.current().invited_only:
            raise refusal(
                request,
                f"This studio is by invitation only, and no member has the address {email}. "
                "Ask an admin to add you with that address, then sign in again.",
            )
        if user is not None and not user.is_active:
            raise refusal(request, "This account is disabled. Ask an admin.")
        if user is not None and not sociallogin.is_existing:
            sociallogin.connect(request, user)

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return not SignInPolicy.current().invited_only

    def on_authentication_error(
        self, request: HttpRequest, provider, error=None, exception=None, extra_context=None
    ) -> None:
        log.warning("single sign-on failed: %s %r", error, exception)
        if error == AuthError.CANCELLED:
            raise refusal(request, f"Signing in with {settings.OIDC_NAME} was cancelled.")
        raise refusal(
            request,
            f"Signing in with {settings.OIDC_NAME} failed: its answer could not be verified. Try again, or ask an admin.",
        )
