"""Users, tokens, roles and the permission check of a shared loopline server.

- :mod:`loopline.auth.store`: users, API tokens, sessions, projects, members, policies;
- :mod:`loopline.auth.collab`: comments with mentions, notifications, the audit log;
- :mod:`loopline.auth.rules`: the role each route requires;
- :mod:`loopline.auth.middleware`: the check every request of ``loopline server`` passes;
- :func:`verify_bearer`: the same token check for other servers (``loopline serve --auth``).

Importing this package is cheap: the database parts load when first used.
"""

from __future__ import annotations

from loopline.auth.check import verify_bearer
from loopline.auth.principal import Principal
from loopline.auth.roles import Role

__all__ = ["Principal", "Role", "verify_bearer"]
