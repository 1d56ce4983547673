"""One typed settings object: the only place loopline reads its environment.

Resolution of ``LOOPLINE_HOME``: the variable when set; else the nearest
``.loopline/`` folder found by walking up from the working directory; else
``~/.loopline``.

>>> s = Settings.from_env({"LOOPLINE_HOME": "/tmp/ll"})
>>> s.metadata_url
'sqlite:////tmp/ll/loopline.db'
>>> s.remote
False
>>> Settings.from_env({"LOOPLINE_HOME": "/tmp/ll", "LOOPLINE_TRACKING_URI": "http://h:5000"}).remote
True
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Settings", "get_settings", "reset_settings"]

HOME_DIRNAME = ".loopline"


def _find_home(env: Mapping[str, str], cwd: Path) -> Path:
    if env.get("LOOPLINE_HOME"):
        return Path(env["LOOPLINE_HOME"]).expanduser().absolute()
    for folder in (cwd, *cwd.parents):
        candidate = folder / HOME_DIRNAME
        if candidate.is_dir():
            return candidate
    return Path.home() / HOME_DIRNAME


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _optional_bool(value: str | None) -> bool | None:
    """``1/true/yes/on`` or ``0/false/no/off``; None when unset or empty.

    >>> [_optional_bool(v) for v in ("yes", "0", "", None)]
    [True, False, None, None]
    """
    text = (value or "").strip().lower()
    return None if not text else _truthy(text)


def _optional_count(value: str | None) -> int | None:
    """A whole number, or None when unset, empty or not a number.

    >>> [_optional_count(v) for v in ("10", " 3 ", "", "x", None)]
    [10, 3, None, None, None]
    """
    text = (value or "").strip()
    return int(text) if text.isdigit() else None


def _default_user(env: Mapping[str, str]) -> str:
    if env.get("LOOPLINE_USER"):
        return env["LOOPLINE_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True, slots=True)
class Settings:
    """Where loopline keeps things and how it reaches them."""

    home: Path
    """The embedded store's folder (SQLite database + blobs)."""
    tracking_uri: str | None = None
    """``http(s)://host:port`` of a server, or a database URL; None means the embedded store."""
    artifacts_uri: str | None = None
    """Where blobs live; defaults to ``<home>/blobs``."""
    token: str | None = field(default=None, repr=False)
    """Bearer token sent to a remote server (kept out of ``repr``, hence out of logs)."""
    user: str = "unknown"
    project: str = "default"
    fsync: bool = False
    """Power-loss durability for blob writes (off by default, as in DVC)."""
    flush_interval: float = 0.2
    """Seconds between background writes of buffered metrics."""
    predictions_dir: Path | None = None
    """Where inference servers log predictions and feedback; defaults to ``<home>/predictions``."""
    auth: bool | None = None
    """``loopline server`` enforces users and tokens (``LOOPLINE_AUTH``); None: only off loopback."""
    auth_rate_limit: int | None = None
    """Requests a minute per user under auth (``LOOPLINE_AUTH_RATE_LIMIT``); None: the default."""
    oidc_issuer: str | None = None
    """Single sign-on: the OpenID Connect issuer's URL (``LOOPLINE_OIDC_ISSUER``)."""
    oidc_client_id: str | None = None
    """This server's client id at the issuer (``LOOPLINE_OIDC_CLIENT_ID``)."""
    oidc_client_secret: str | None = field(default=None, repr=False)
    """Its client secret (``LOOPLINE_OIDC_CLIENT_SECRET``)."""
    oidc_username_claim: str = "preferred_username"
    """The ID-token claim that names the user (``LOOPLINE_OIDC_USERNAME_CLAIM``)."""
    oidc_redirect_uri: str | None = None
    """Where the issuer sends the browser back (``LOOPLINE_OIDC_REDIRECT_URI``); None: derived
    from the request."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            home=_find_home(env, cwd or Path.cwd()),
            tracking_uri=env.get("LOOPLINE_TRACKING_URI") or None,
            artifacts_uri=env.get("LOOPLINE_ARTIFACTS_URI") or None,
            token=env.get("LOOPLINE_TRACKING_TOKEN") or None,
            user=_default_user(env),
            project=env.get("LOOPLINE_PROJECT") or "default",
            fsync=_truthy(env.get("LOOPLINE_FSYNC")),
            flush_interval=float(env.get("LOOPLINE_FLUSH_INTERVAL") or 0.2),
            predictions_dir=Path(env["LOOPLINE_PREDICTIONS_DIR"])
            if env.get("LOOPLINE_PREDICTIONS_DIR")
            else None,
            auth=_optional_bool(env.get("LOOPLINE_AUTH")),
            auth_rate_limit=_optional_count(env.get("LOOPLINE_AUTH_RATE_LIMIT")),
            oidc_issuer=(env.get("LOOPLINE_OIDC_ISSUER") or "").strip().rstrip("/") or None,
            oidc_client_id=env.get("LOOPLINE_OIDC_CLIENT_ID") or None,
            oidc_client_secret=env.get("LOOPLINE_OIDC_CLIENT_SECRET") or None,
            oidc_username_claim=env.get("LOOPLINE_OIDC_USERNAME_CLAIM") or "preferred_username",
            oidc_redirect_uri=env.get("LOOPLINE_OIDC_REDIRECT_URI") or None,
        )

    @property
    def remote(self) -> bool:
        """True when the tracking URI names an HTTP server."""
        return bool(self.tracking_uri) and str(self.tracking_uri).startswith(
            ("http://", "https://")
        )

    @property
    def metadata_url(self) -> str:
        """The SQLAlchemy URL of the metadata database (embedded SQLite by default)."""
        if self.tracking_uri and not self.remote:
            return self.tracking_uri
        return f"sqlite:///{self.home / 'loopline.db'}"

    @property
    def blobs_uri(self) -> str:
        return self.artifacts_uri or str(self.home / "blobs")

    @property
    def predictions_root(self) -> Path:
        """The root of the prediction and feedback logs (see :mod:`loopline.predlog`)."""
        return self.predictions_dir or self.home / "predictions"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def reset_settings(settings: Settings | None = None) -> None:
    """Forget (or replace) the cached settings; for tests and long-lived hosts."""
    global _settings
    _settings = settings
