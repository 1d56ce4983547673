"""Which role each route needs: one table, read top to bottom, first match wins.

Anything the table does not name falls to the safe side: reads (GET, HEAD) need
``viewer``, every other method ``editor``; paths outside the APIs (the UI's assets)
are open. Searches that MLflow sends as POST are reads.

>>> required_role("GET", "/health").label
'open'
>>> required_role("POST", "/api/2.0/mlflow/runs/search").label
'viewer'
>>> required_role("PUT", "/api/v1/registry/aliases").label
'maintainer'
>>> required_role("POST", "/api/v1/some-new-thing").label
'editor'
>>> required_role("DELETE", "/api/v1/projects/p/members/ana").label
'admin'
"""

from __future__ import annotations

import re
from functools import lru_cache

from loopline.auth.roles import Role

__all__ = ["API_PREFIXES", "RULES", "is_api_path", "required_role"]

_READ = frozenset({"GET", "HEAD", "OPTIONS"})
_ANY = frozenset({"*"})
_WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

API_PREFIXES = ("/api/", "/ajax-api/", "/docs", "/redoc", "/openapi.json")
_MLFLOW = r"/(?:ajax-)?api/2\.0/mlflow"

# (methods, path pattern, role). Patterns match the whole path.
RULES: tuple[tuple[frozenset[str], str, Role], ...] = (
    # -- open ---------------------------------------------------------------------
    (_ANY, r"/health", Role.OPEN),
    (frozenset({"POST"}), r"/api/v1/auth/login", Role.OPEN),
    # Single sign-on: the trip to the identity provider and back.
    (frozenset({"GET"}), r"/api/v1/auth/oidc/(?:login|callback)", Role.OPEN),
    # /me answers 401 itself when nobody is signed in; logout just clears the cookie.
    (_ANY, r"/api/v1/auth/(?:me|logout)", Role.OPEN),
    # -- any signed-in user: their own things ---------------------------------------
    (_ANY, r"/api/v1/auth/.*", Role.AUTHENTICATED),
    (_ANY, r"/api/v1/tokens(?:/.*)?", Role.AUTHENTICATED),
    (_ANY, r"/api/v1/notifications(?:/.*)?", Role.AUTHENTICATED),
    # Webhooks: one's own, or a project's (the route requires its admin role).
    (_ANY, r"/api/v1/webhooks(?:/.*)?", Role.AUTHENTICATED),
    # The event log: the route keeps only the projects the caller can read.
    (_READ, r"/api/v1/events", Role.AUTHENTICATED),
    (_READ, r"/api/v1/projects", Role.AUTHENTICATED),
    (_READ, r"/(?:docs|redoc|openapi\.json)(?:/.*)?", Role.AUTHENTICATED),
    (_READ, r"/api/3\.0/mlflow/server-info|/ajax-api/3\.0/mlflow/server-info", Role.AUTHENTICATED),
    # -- server administrators -------------------------------------------------------
    (_ANY, r"/api/v1/users(?:/.*)?", Role.SERVER_ADMIN),
    (_ANY, r"/api/v1/audit(?:/.*)?", Role.SERVER_ADMIN),
    (_WRITE, r"/api/v1/projects", Role.SERVER_ADMIN),
    # -- project administrators -------------------------------------------------------
    (_WRITE, r"/api/v1/projects/[^/]+/(?:members|policy)(?:/.*)?", Role.ADMIN),
    (_READ, r"/api/v1/projects/[^/]+/(?:members|policy)(?:/.*)?", Role.VIEWER),
    # -- maintainers: aliases, approvals, deployments, model deletion ----------------------
    (_WRITE, r"/api/v1/registry/aliases(?:/.*)?", Role.MAINTAINER),
    (frozenset({"DELETE"}), r"/api/v1/registry/(?:model|version)", Role.MAINTAINER),
    (frozenset({"PATCH"}), r"/api/v1/registry/model", Role.MAINTAINER),
    (_WRITE, r"/api/v1/deployments(?:/.*)?", Role.MAINTAINER),
    (_WRITE, _MLFLOW + r"/registered-models/alias", Role.MAINTAINER),
    (_WRITE, _MLFLOW + r"/model-versions/transition-stage", Role.MAINTAINER),
    (_WRITE, _MLFLOW + r"/(?:registered-models|model-versions)/delete", Role.MAINTAINER),
    # -- reads sent as POST ------------------------------------------------------------------
    (frozenset({"POST"}), r"/api/v1/runs/search", Role.VIEWER),
    (frozenset({"POST"}), r"/api/v1/registry/logged-models/search", Role.VIEWER),
    # Which blobs the server lacks, and a batch of blobs read back (checkout of small files).
    (frozenset({"POST"}), r"/api/v1/data/blobs/(?:missing|fetch)", Role.VIEWER),
    (frozenset({"POST"}), _MLFLOW + r"/(?:runs|experiments|logged-models)/search", Role.VIEWER),
    (frozenset({"POST"}), _MLFLOW + r"/registered-models/get-latest-versions", Role.VIEWER),
)

_COMPILED = tuple((methods, re.compile(pattern), role) for methods, pattern, role in RULES)


def is_api_path(path: str) -> bool:
    """Paths the permission check guards (the APIs and their docs); the rest is the UI."""
    return path.startswith(API_PREFIXES)


@lru_cache(maxsize=4096)
def required_role(method: str, path: str) -> Role:
    """The least role a caller needs for ``method path``."""
    method = method.upper()
    for methods, pattern, role in _COMPILED:
        if ("*" in methods or method in methods) and pattern.fullmatch(path):
            return role
    if not is_api_path(path):
        return Role.OPEN
    return Role.VIEWER if method in _READ else Role.EDITOR
