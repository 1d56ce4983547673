"""Roles and the levels a route may require.

Roles are ordered: each includes the rights of those below it.

>>> Role.parse("Maintainer") >= Role.EDITOR
True
>>> Role.parse("owner")
Traceback (most recent call last):
...
loopline.errors.InvalidArgumentError: unknown role 'owner' (use one of viewer, editor, maintainer, admin)
"""

from __future__ import annotations

from enum import IntEnum

from loopline.errors import InvalidArgumentError

__all__ = ["PROJECT_ROLES", "Role"]


class Role(IntEnum):
    """What a route requires, from nothing at all to a server administrator."""

    OPEN = 0
    """Anyone, without credentials (/health, the login endpoint, the UI's assets)."""
    AUTHENTICATED = 1
    """Any signed-in user, whatever their projects (their own tokens, notifications)."""
    VIEWER = 2
    EDITOR = 3
    MAINTAINER = 4
    ADMIN = 5
    """A project's administrator: members and settings."""
    SERVER_ADMIN = 6
    """A user created with ``--admin``: users, projects, the audit log."""

    @classmethod
    def parse(cls, text: str) -> Role:
        """A project role by name (viewer, editor, maintainer, admin)."""
        role = _BY_NAME.get(text.strip().lower())
        if role is None:
            raise InvalidArgumentError(
                f"unknown role {text!r}", hint="use one of viewer, editor, maintainer, admin"
            )
        return role

    @property
    def label(self) -> str:
        return self.name.lower()


PROJECT_ROLES = (Role.VIEWER, Role.EDITOR, Role.MAINTAINER, Role.ADMIN)
_BY_NAME = {r.label: r for r in PROJECT_ROLES}
