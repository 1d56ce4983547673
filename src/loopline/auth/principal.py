"""Who is behind a request, once authenticated."""

from __future__ import annotations

from dataclasses import dataclass, field

from loopline.auth.roles import Role

__all__ = ["ANONYMOUS", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user and their roles per project.

    >>> p = Principal(name="ana", user_id=2, roles={"default": Role.EDITOR})
    >>> p.role_in("default").label, p.role_in("other")
    ('editor', <Role.OPEN: 0>)
    >>> Principal(name="root", user_id=1, is_admin=True).role_in("any").label
    'server_admin'
    """

    name: str
    user_id: int
    is_admin: bool = False
    roles: dict[str, Role] = field(default_factory=dict)
    via: str = "token"
    """How they authenticated: token, session, basic or password."""
    csrf_token: str | None = None
    """Set for session (cookie) logins: state changes must echo it."""

    @property
    def authenticated(self) -> bool:
        return self.user_id > 0

    def role_in(self, project: str) -> Role:
        """The caller's effective role in ``project`` (OPEN when not a member)."""
        if self.is_admin:
            return Role.SERVER_ADMIN
        return self.roles.get(project, Role.OPEN)


ANONYMOUS = Principal(name="anonymous", user_id=0, via="none")
