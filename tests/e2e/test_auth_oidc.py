"""Single sign-on against a local OpenID Connect issuer (an HTTP server on 127.0.0.1).

The issuer publishes discovery and its keys, sends the browser back with a code, and
exchanges the code for an ID token signed with its RSA key (joserfc). The server
must check the token (signature, issuer, audience, nonce) and the state before it
signs anyone in, and only known, enabled users.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from loopline.auth.oidc import OidcClient, OidcConfig
from loopline.auth.roles import Role

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .conftest import ThreadServer

CLIENT_ID, CLIENT_SECRET = "loopline", "client-secret-123"


class Issuer:
    """Authorization code flow for whoever ``subject`` names; signs with ``key``."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.signing_key = self.key
        self.subject = "ana"
        self.codes: dict[str, dict[str, str]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, body: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/.well-known/openid-configuration":
                    self._json(
                        {
                            "issuer": outer.url,
                            "authorization_endpoint": f"{outer.url}/authorize",
                            "token_endpoint": f"{outer.url}/token",
                            "jwks_uri": f"{outer.url}/jwks",
                        }
                    )
                elif parts.path == "/jwks":
                    self._json({"keys": [outer.key.as_dict(private=False)]})
                elif parts.path == "/authorize":  # the user signs in at once
                    code = secrets.token_urlsafe(16)
                    outer.codes[code] = query
                    back = urlencode({"code": code, "state": query["state"]})
                    self.send_response(302)
                    self.send_header("location", f"{query['redirect_uri']}?{back}")
                    self.end_headers()
                else:
                    self._json({"error": "not_found"}, 404)

            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                sent = httpx.BasicAuth(CLIENT_ID, CLIENT_SECRET)._auth_header
                asked = outer.codes.pop(form.get("code", ""), None)
                if self.headers.get("authorization") != sent or asked is None:
                    self._json({"error": "invalid_grant"}, 400)
                    return
                now = int(time.time())
                claims = {
                    "iss": outer.url,
                    "aud": asked["client_id"],
                    "sub": "id-1",
                    "preferred_username": outer.subject,
                    "nonce": asked["nonce"],
                    "iat": now,
                    "exp": now + 300,
                }
                token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, outer.signing_key)
                self._json({"id_token": token, "access_token": "at", "token_type": "Bearer"})

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    made = Issuer()
    yield made
    made.close()


def _sign_in(browser: httpx.Client) -> httpx.Response:
    """Follow the redirects like a browser; the last answer is loopline's callback."""
    to_issuer = browser.get("/api/v1/auth/oidc/login")
    assert to_issuer.status_code == 302, to_issuer.text
    back = httpx.get(to_issuer.headers["location"])
    assert back.status_code == 302
    return browser.get(back.headers["location"])


def test_single_sign_on_with_a_local_issuer(thread_server: ThreadServer, issuer: Issuer) -> None:
    def configure(app: Any) -> Any:
        config = app.state.auth
        config.enabled = True
        config.oidc = OidcClient(OidcConfig(issuer.url, CLIENT_ID, CLIENT_SECRET))
        config.store.create_user("ana", None)
        config.store.set_member("default", "ana", Role.EDITOR, actor="ana")
        config.store.create_user("gone", None)
        config.store.set_disabled("gone", True, actor="ana")
        return app

    with thread_server(wrap=configure) as url:
        with httpx.Client(base_url=url, timeout=30) as browser:
            done = _sign_in(browser)
            assert done.status_code == 302, done.text
            assert done.headers["location"] == "/"
            assert "httponly" in done.headers["set-cookie"].lower()
            me = browser.get("/api/v1/auth/me").json()
            assert me["user"]["name"] == "ana"
            assert me["roles"] == {"default": "editor"}
            assert me["via"] == "session"

        # A state that is not this browser's is refused (login CSRF).
        with httpx.Client(base_url=url) as other:
            other.get("/api/v1/auth/oidc/login")
            forged = other.get("/api/v1/auth/oidc/callback", params={"code": "c", "state": "x"})
            assert forged.status_code == 400
            assert "loopline_session" not in forged.cookies

        # Unknown or disabled users, and tokens signed by another key, sign nobody in.
        for subject in ("stranger", "gone"):
            issuer.subject = subject
            with httpx.Client(base_url=url, timeout=30) as browser:
                done = _sign_in(browser)
                assert done.status_code == 403, done.text
                assert browser.get("/api/v1/auth/me").status_code == 401
        issuer.subject = "ana"
        issuer.signing_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        with httpx.Client(base_url=url, timeout=30) as browser:
            done = _sign_in(browser)
            assert done.status_code == 401, done.text
            assert "ID token is not valid" in done.json()["message"]


def test_without_configuration_the_routes_say_so(thread_server: ThreadServer) -> None:
    with thread_server() as url:
        answer = httpx.get(f"{url}/api/v1/auth/oidc/login")
        assert answer.status_code == 404
        assert "LOOPLINE_OIDC_ISSUER" in answer.json()["hint"]
