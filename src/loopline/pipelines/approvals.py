"""Who may approve a model version: the words a run stopped at an approval gate says.

The collaboration layer keeps roles per project: maintainers (and project admins)
approve versions; server administrators may too. With the project's four-eyes
policy on, the version's author may not approve their own version. A store
without users (auth never set up) has nobody to name: the message then says which
role is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopline.store.metadata import Database

__all__ = ["Approvers", "approvers"]


@dataclass(slots=True)
class Approvers:
    """The users who may approve a version of a project's model."""

    project: str
    names: list[str] = field(default_factory=list)
    four_eyes: bool = False
    author: str = ""
    known: bool = False
    """False when the store has no users at all (nobody can be named)."""

    def describe(self) -> str:
        """The sentence naming them.

        >>> Approvers("vision", ["ana", "bo"], True, "cy", True).describe()
        "a maintainer of project 'vision' must approve it: ana or bo (four-eyes: not cy, its author)"
        >>> Approvers("default").describe()
        "a maintainer of project 'default' must approve it"
        >>> Approvers("vision", [], True, "cy", True).describe()
        "a maintainer of project 'vision' other than cy (its author; four-eyes) must approve it, and the project has none: add one with `loopline projects members add vision USER --role maintainer`"
        """
        who = f"a maintainer of project {self.project!r}"
        if not self.known:
            return f"{who} must approve it"
        if not self.names:
            other = f" other than {self.author} (its author; four-eyes)" if self.four_eyes else ""
            return (
                f"{who}{other} must approve it, and the project has none: add one with "
                f"`loopline projects members add {self.project} USER --role maintainer`"
            )
        names = ", ".join(self.names[:-1]) + (" or " if len(self.names) > 1 else "")
        names += self.names[-1]
        note = (
            f" (four-eyes: not {self.author}, its author)" if self.four_eyes and self.author else ""
        )
        return f"{who} must approve it: {names}{note}"


def approvers(db: Database, project: str, author: str) -> Approvers:
    """Who may approve ``author``'s version in ``project``, read from the auth tables."""
    from loopline.auth.roles import Role
    from loopline.auth.store import AuthStore
    from loopline.errors import NotFoundError

    store = AuthStore(db)
    users = store.list_users()
    if not users:
        return Approvers(project)
    try:
        four_eyes = store.four_eyes(project)
        with db.read() as conn:
            project_id = store.project_id(conn, project)
        members = store.members_with_role(project_id, Role.MAINTAINER)
    except NotFoundError:
        four_eyes, members = False, []
    admins = [u["name"] for u in users if u["is_admin"] and not u["disabled"]]
    names = sorted(set(members)) + sorted(set(admins) - set(members))
    if four_eyes:
        names = [n for n in names if n != author]
    return Approvers(project, names, four_eyes, author, known=True)
