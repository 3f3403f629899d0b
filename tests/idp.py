"""A small, real OpenID Connect provider for the tests, built on Authlib's authorization server.

It serves a discovery document, a JWKS, an authorization endpoint with a sign-in page, a token
endpoint (authorization code with PKCE S256, required) that issues RS256-signed ID tokens, and a
userinfo endpoint, over HTTP on a free loopback port. The tests say who may sign in (`add_user`)
and may ask for a broken answer (`fault`): an ID token for "wrong_audience", "expired" or with a
"bad_signature", or userinfo about "other_subject" than the ID token.

    python -m tests.idp --port 8200 --user ada@example.com:password[:group,...]

runs one in the foreground (client id `nanoweb`, secret `nanoweb-secret`), to try single sign-on
with `make run` (README, "Single sign-on").
"""

from __future__ import annotations

import argparse
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import KeySet, RSAKey

SCOPES = ("openid", "profile", "email", "groups")
CODE_SECONDS = 300


@dataclass
class User:
    email: str
    password: str
    verified: bool = True
    groups: list[str] = field(default_factory=list)
    name: str = ""
    sub: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    issued: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.issued)

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: dict[str, str], query: dict[str, str], form: dict[str, str]):
        super().__init__(method, uri, headers=headers)
        self._query, self._form = query, form
        self.payload = BasicOAuth2Payload({**query, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class RequiredS256(CodeChallenge):
    """PKCE on every authorization request, with S256 only (Authlib requires it of public clients only)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        if grant.request.payload.data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required")
        super().validate_code_challenge(grant, redirect_uri)


class IdentityProvider:
    def __init__(self, client_id: str = "nanoweb", client_secret: str = "nanoweb-secret") -> None:
        self.client = Client(client_id, client_secret, [])
        self.users: dict[str, User] = {}
        self.fault = ""
        self.key = RSAKey.generate_key(2048, parameters={"kid": "idp-1", "use": "sig", "alg": "RS256"})
        # Same key id, another key: what a forged token looks like to the relying party.
        self.forger = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, tuple[User, str]] = {}
        self.issuer = ""
        self.server = self._authorization_server()
        self._http: ThreadingHTTPServer | None = None

    # --- what the tests use ---

    def add_user(self, email: str, password: str = "idp-password", **extra: Any) -> User:
        user = User(email=email, password=password, **extra)
        self.users[email.lower()] = user
        return user

    def allow_redirect(self, uri: str) -> None:
        if uri not in self.client.redirect_uris:
            self.client.redirect_uris.append(uri)

    def reset(self) -> None:
        self.users.clear()
        self.fault = ""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> IdentityProvider:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                idp._serve(self)

            def do_POST(self) -> None:
                idp._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer((host, port), Handler)
        self.issuer = f"http://{host}:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, name="idp-http", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http:
            self._http.shutdown()
            self._http.server_close()

    # --- Authlib's pieces ---

    def _authorization_server(self) -> AuthorizationServer:
        idp = self

        class Server(AuthorizationServer):
            def query_client(self, client_id):
                return idp.client if client_id == idp.client.client_id else None

            def save_token(self, token, request):
                idp.tokens[token["access_token"]] = (request.user, token.get("scope", ""))

            def send_signal(self, name, *args, **kwargs):
                pass

            def create_oauth2_request(self, request):
                return request

            def handle_response(self, status, body, headers):
                return status, body, headers

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, request):
                data = request.payload.data
                idp.codes[code] = Code(
                    code, request.client.client_id, request.payload.redirect_uri, request.scope, request.user,
                    data.get("nonce"), data.get("code_challenge"), data.get("code_challenge_method"),
                )  # fmt: skip

            def query_authorization_code(self, code, client):
                found = idp.codes.get(code)
                if found and found.client_id == client.client_id and time.time() - found.issued < CODE_SECONDS:
                    return found
                return None

            def delete_authorization_code(self, authorization_code):
                idp.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class IDToken(OpenIDCode):
            def exists_nonce(self, nonce, request):
                return any(code.nonce == nonce for code in idp.codes.values())

            def resolve_client_private_key(self, client):
                return idp.forger if idp.fault == "bad_signature" else idp.key

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": "idp-1"}

            def get_client_claims(self, client):
                now = int(time.time())
                audience = "another-client" if idp.fault == "wrong_audience" else client.get_client_id()
                expiry = now - 600 if idp.fault == "expired" else now + 300
                return {"iss": idp.issuer, "aud": [audience], "iat": min(now, expiry - 300), "exp": expiry}

            def generate_user_info(self, user, scope):
                return idp.claims(user, scope)

        server = Server(scopes_supported=list(SCOPES))
        server.register_token_generator("default", BearerTokenGenerator(lambda *a, **k: secrets.token_urlsafe(32)))
        server.register_grant(CodeGrant, [IDToken(require_nonce=False), RequiredS256(required=True)])
        return server

    def claims(self, user: User, scope: str) -> UserInfo:
        info = UserInfo(sub=user.sub, name=user.name or user.email.split("@")[0])
        if "email" in scope.split():
            info.update(email=user.email, email_verified=user.verified)
        if "groups" in scope.split():
            info["groups"] = list(user.groups)
        return info

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": list(SCOPES),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "name", "email", "email_verified", "groups"],
        }

    # --- HTTP ---

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query))
        length = int(handler.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(handler.rfile.read(length).decode())) if handler.command == "POST" else {}
        headers = dict(handler.headers.items())
        request = Request(handler.command, f"{self.issuer}{handler.path}", headers, query, form)
        route = (handler.command, url.path)
        if route == ("GET", "/.well-known/openid-configuration"):
            answer = 200, json.dumps(self.discovery()), [("Content-Type", "application/json")]
        elif route == ("GET", "/jwks"):
            keys = KeySet([self.key]).as_dict(private=False)
            answer = 200, json.dumps(keys), [("Content-Type", "application/json")]
        elif url.path == "/authorize":
            answer = self._authorize(request, form)
        elif route == ("POST", "/token"):
            status, body, extra = self.server.create_token_response(request)
            answer = status, json.dumps(body), list(extra)
        elif url.path == "/userinfo":
            answer = self._userinfo(headers)
        else:
            answer = 404, "not found", [("Content-Type", "text/plain")]
        status, body, extra = answer
        data = body.encode() if isinstance(body, str) else body
        handler.send_response(status)
        for name, value in extra:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _authorize(self, request: Request, form: dict[str, str]) -> tuple[int, str, list]:
        try:
            grant = self.server.get_consent_grant(request)
        except OAuth2Error as error:
            return (
                400,
                f"Bad authorization request: {error.error}: {error.description}",
                [("Content-Type", "text/plain")],
            )
        if request.method == "GET":
            return self._sign_in_page(request.args, "")
        user = self.users.get(form.get("email", "").strip().lower())
        if user is None or not secrets.compare_digest(user.password, form.get("password", "")):
            return self._sign_in_page(request.args, "Wrong email or password.")
        status, body, headers = self.server.create_authorization_response(request, grant_user=user, grant=grant)
        return status, body, headers

    def _sign_in_page(self, query: dict[str, str], error: str) -> tuple[int, str, list]:
        action = html.escape("/authorize?" + urlencode(query))
        alert = f'<p role="alert">{html.escape(error)}</p>' if error else ""
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test IdP: sign in</title></head>
<body><main><h1>Test identity provider</h1>{alert}
<form method="post" action="{action}">
<label>Email <input name="email" type="email" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Continue</button></form></main></body></html>"""
        return (200 if not error else 401), page, [("Content-Type", "text/html; charset=utf-8")]

    def _userinfo(self, headers: dict[str, str]) -> tuple[int, str, list]:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        found = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if found is None:
            return 401, json.dumps({"error": "invalid_token"}), [("Content-Type", "application/json")]
        user, scope = found
        claims = self.claims(user, scope)
        if self.fault == "other_subject":
            claims["sub"] = "someone-else"
        return 200, json.dumps(claims), [("Content-Type", "application/json")]


def main() -> None:
    parser = argparse.ArgumentParser(description="A test OpenID Connect provider on loopback.")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--redirect", default="http://127.0.0.1:8000/sso/oidc/callback")
    parser.add_argument("--user", action="append", default=[], help="email:password[:group,group]")
    args = parser.parse_args()
    idp = IdentityProvider()
    idp.allow_redirect(args.redirect)
    for spec in args.user:
        email, password, *groups = spec.split(":")
        idp.add_user(email, password, groups=groups[0].split(",") if groups else [])
    idp.start(port=args.port)
    print(f"issuer {idp.issuer}, client id {idp.client.client_id}, secret {idp.client.client_secret}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        idp.stop()


if __name__ == "__main__":
    main()
