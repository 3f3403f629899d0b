"""The two URLs of the sign-in with the team's OpenID Connect provider, and the sign-in page's button.

django-allauth runs the flow (discovery, state, PKCE, the code exchange, userinfo); these views
differ from allauth's own only in their adapter, which always checks the ID token's signature."""

from __future__ import annotations

import logging

import jwt
import requests
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from nanoweb.sso.adapter import refusal

# Asymmetric only: an ID token that names HS256 or "none" is refused, whatever its key id.
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
CLOCK_SKEW_SECONDS = 60
log = logging.getLogger(__name__)


class VerifiedIDTokenAdapter(OpenIDConnectOAuth2Adapter):
    """allauth skips the ID token's signature when it fetched the token itself (the specification
    allows it over TLS); we check it always, with the issuer, audience, expiry and authorized party,
    so that a token endpoint reached over plain HTTP or a mistaken proxy cannot hand us anyone."""

    def complete_login(self, request: HttpRequest, app, token, **kwargs):
        if not kwargs["response"].get("id_token"):
            raise OAuth2Error("the provider answered without an ID token")
        return super().complete_login(request, app, token, **kwargs)

    def _decode_id_token(self, app: SocialApp, id_token: str) -> dict:
        try:
            algorithm = jwt.get_unverified_header(id_token).get("alg")
            if algorithm not in ID_TOKEN_ALGORITHMS:
                raise OAuth2Error(f"ID token signed with {algorithm!r}")
            _, key = jwtkit.fetch_key(id_token, self.openid_config["jwks_uri"], jwtkit.lookup_kid_jwk)
            claims = jwt.decode(
                id_token, key=key, algorithms=[algorithm], audience=app.client_id, issuer=self.openid_config["issuer"],
                leeway=CLOCK_SKEW_SECONDS, options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )  # fmt: skip
        except (jwt.PyJWTError, KeyError, ValueError) as error:
            raise OAuth2Error(f"invalid ID token: {error}") from error
        if isinstance(claims["aud"], list) and len(claims["aud"]) > 1 and claims.get("azp") != app.client_id:
            raise OAuth2Error("ID token for several audiences without us as its authorized party")
        return claims


@login_not_required
def login(request: HttpRequest, provider_id: str) -> HttpResponse:
    """The button's POST (with its CSRF token) sends the browser to the provider; a GET goes to the sign-in page."""
    if request.method != "POST":
        return redirect("login")
    try:
        return OAuth2LoginView.adapter_view(VerifiedIDTokenAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None
    except requests.RequestException as error:  # its discovery document, read on the way there
        log.warning("single sign-on: the provider cannot be reached: %r", error)
        response = refusal(
            request,
            f"{settings.OIDC_NAME} cannot be reached just now. Try again in a moment, or sign in with a password.",
        ).response
        response.status_code = 503
        return response


@login_not_required
def callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        return OAuth2CallbackView.adapter_view(VerifiedIDTokenAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None


def single_sign_on(request: HttpRequest) -> dict[str, str]:
    """Context for the sign-in page: the provider's name on the button, when one is configured."""
    return {"sso_name": settings.OIDC_NAME if settings.OIDC_ISSUER else ""}
