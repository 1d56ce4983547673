"""Single sign-on through OpenID Connect (the authorization code flow) for the web UI.

The server is a confidential client of one issuer: ``GET /api/v1/auth/oidc/login``
sends the browser to the issuer with a random ``state`` and ``nonce`` (kept in a
short-lived HttpOnly cookie); the issuer sends it back to ``/api/v1/auth/oidc/callback``
with a code, which the server exchanges for an ID token. The token's signature
(the issuer's published keys), issuer, audience, expiry and nonce are checked
(joserfc, authlib's JOSE library) before the claim naming the user is trusted. Only
existing, enabled loopline users sign in this way (their roles stay loopline's);
they then get the same session cookie as a password sign-in.

Configured by ``LOOPLINE_OIDC_ISSUER``, ``LOOPLINE_OIDC_CLIENT_ID``,
``LOOPLINE_OIDC_CLIENT_SECRET``, optionally ``LOOPLINE_OIDC_USERNAME_CLAIM``
(default ``preferred_username``) and ``LOOPLINE_OIDC_REDIRECT_URI`` (default: the
callback's URL as the server sees it), read into :class:`~loopline.config.Settings`.

>>> from loopline.config import Settings
>>> OidcConfig.from_settings(Settings.from_env({"LOOPLINE_HOME": "/tmp/ll"})) is None
True
>>> OidcConfig.from_settings(Settings.from_env({"LOOPLINE_HOME": "/tmp/ll",
...     "LOOPLINE_OIDC_ISSUER": "https://id.example.com/",
...     "LOOPLINE_OIDC_CLIENT_ID": "loopline", "LOOPLINE_OIDC_CLIENT_SECRET": "s"})).issuer
'https://id.example.com'
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from loopline.errors import InvalidArgumentError, MissingDependencyError, UnauthenticatedError

if TYPE_CHECKING:
    from loopline.config import Settings

__all__ = ["OidcClient", "OidcConfig"]

_HINT = "sign in again; if it keeps failing, ask an administrator to check the SSO settings"


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """One issuer and this server's client registration at it."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    username_claim: str = "preferred_username"
    redirect_uri: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The SSO configuration of ``settings``; None when no issuer is set."""
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id or not settings.oidc_client_secret:
            raise InvalidArgumentError(
                "LOOPLINE_OIDC_ISSUER is set without a client id and secret",
                hint="set LOOPLINE_OIDC_CLIENT_ID and LOOPLINE_OIDC_CLIENT_SECRET too",
            )
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            username_claim=settings.oidc_username_claim,
            redirect_uri=settings.oidc_redirect_uri,
        )


class OidcClient:
    """Discovery, the authorization URL, and the code exchange with ID-token checks."""

    def __init__(self, config: OidcConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self.timeout = timeout
        self._discovered: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _metadata(self) -> dict[str, Any]:
        import httpx

        with self._lock:
            if self._discovered is None:
                url = f"{self.config.issuer}/.well-known/openid-configuration"
                found = httpx.get(url, timeout=self.timeout).raise_for_status().json()
                if str(found.get("issuer", "")).rstrip("/") != self.config.issuer:
                    raise UnauthenticatedError(
                        "the identity provider's discovery names another issuer", hint=_HINT
                    )
                self._discovered = found
            return self._discovered

    def authorize_url(self, redirect_uri: str, state: str, nonce: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": state,
            "nonce": nonce,
        }
        return f"{self._metadata()['authorization_endpoint']}?{urlencode(query)}"

    def exchange(self, code: str, redirect_uri: str, nonce: str) -> dict[str, Any]:
        """The verified claims of the ID token the code is exchanged for."""
        import httpx

        try:
            from joserfc import jwt
            from joserfc.errors import JoseError
            from joserfc.jwk import KeySet
        except ModuleNotFoundError as exc:  # pragma: no cover - an optional extra
            raise MissingDependencyError("joserfc", "sso") from exc

        meta = self._metadata()
        answer = httpx.post(
            meta["token_endpoint"],
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            auth=(self.config.client_id, self.config.client_secret),
            timeout=self.timeout,
        )
        if not answer.is_success or "id_token" not in answer.json():
            raise UnauthenticatedError(
                f"the identity provider refused the code (HTTP {answer.status_code})", hint=_HINT
            )
        keys = httpx.get(meta["jwks_uri"], timeout=self.timeout).raise_for_status().json()
        try:
            token = jwt.decode(
                answer.json()["id_token"], KeySet.import_key_set(keys), algorithms=["RS256"]
            )
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise UnauthenticatedError(
                f"the ID token is not valid: {type(exc).__name__}", hint=_HINT
            ) from exc
        return dict(token.claims)
