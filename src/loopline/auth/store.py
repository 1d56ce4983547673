"""Users, API tokens, sessions, projects, memberships and policies over the metadata store.

Every change emits an event (``user.created``, ``token.revoked``,
``project.member_added``...) in its own transaction, so the event log and the
notifications built on it see them.

>>> import tempfile
>>> from loopline.store.metadata import Database
>>> store = AuthStore(Database(f"sqlite:///{tempfile.mkdtemp()}/m.db"))
>>> store.create_user("root", "a long password", is_admin=True)["is_admin"]
True
>>> token, info = store.create_token("root", name="laptop")
>>> store.authenticate_token(token).name
'root'
>>> store.revoke_token("root", info["id"])
>>> store.authenticate_token(token) is None
True
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from loopline.auth.credentials import (
    TOKEN_PREFIX,
    check_password_strength,
    digest,
    hash_password,
    new_session_id,
    new_token,
    verify_password,
)
from loopline.auth.principal import Principal
from loopline.auth.roles import PROJECT_ROLES, Role
from loopline.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
)
from loopline.events import emit
from loopline.store.metadata.schema import projects
from loopline.store.metadata.schema_collab import (
    api_tokens,
    project_members,
    project_policies,
    sessions,
    users,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopline.store.metadata import Database

__all__ = ["SESSION_SECONDS", "AuthStore", "now_ms"]

SESSION_SECONDS = 12 * 3600
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# last_used_at is a convenience; writing it on every request would make reads write.
_TOUCH_EVERY_MS = 60_000


def now_ms() -> int:
    return int(time.time() * 1000)


def check_name(kind: str, name: str) -> str:
    """User and project names: letters, digits, ``.``, ``_``, ``-`` (no spaces, no ``/``).

    >>> check_name("user", "ana.b")
    'ana.b'
    """
    if not _NAME.match(name) or name.isdigit():
        raise InvalidArgumentError(
            f"invalid {kind} name {name!r}",
            hint="use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def _user_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "is_admin": bool(row.is_admin),
        "disabled": bool(row.disabled),
        "created_at": row.created_at,
    }


def _token_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }


class AuthStore:
    """The identity and access tables, with the rules that keep them consistent."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- users -----------------------------------------------------------------------
    def user_count(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    def create_user(
        self,
        name: str,
        password: str | None,
        *,
        email: str = "",
        is_admin: bool = False,
        actor: str = "",
    ) -> dict[str, Any]:
        check_name("user", name)
        if password is not None:
            check_password_strength(password)
        hashed = hash_password(password) if password is not None else None
        now = now_ms()
        with self.db.write() as conn:
            if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
                raise AlreadyExistsError(f"user {name!r} already exists")
            uid = conn.execute(
                sa.insert(users).returning(users.c.id),
                {
                    "name": name,
                    "email": email,
                    "password_hash": hashed,
                    "is_admin": is_admin,
                    "disabled": False,
                    "created_at": now,
                    "updated_at": now,
                },
            ).scalar_one()
            emit(conn, "user.created", "user", name, actor or name, {"is_admin": is_admin})
        return self.get_user(name) | {"id": uid}

    def get_user(self, name: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"user {name!r} does not exist", hint="list users with `loopline users list`"
            )
        return _user_dict(row)

    def list_users(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.name)).all()
        return [_user_dict(r) for r in rows]

    def set_disabled(self, name: str, disabled: bool, *, actor: str) -> dict[str, Any]:
        with self.db.write() as conn:
            uid = self._user_id(conn, name)
            conn.execute(
                sa.update(users)
                .where(users.c.id == uid)
                .values(disabled=disabled, updated_at=now_ms())
            )
            if disabled:
                # A disabled user's cookies stop working at once.
                conn.execute(sa.delete(sessions).where(sessions.c.user_id == uid))
            kind = "user.disabled" if disabled else "user.enabled"
            emit(conn, kind, "user", name, actor, {})
        return self.get_user(name)

    def set_password(self, name: str, password: str, *, actor: str) -> None:
        check_password_strength(password)
        hashed = hash_password(password)
        with self.db.write() as conn:
            uid = self._user_id(conn, name)
            conn.execute(
                sa.update(users)
                .where(users.c.id == uid)
                .values(password_hash=hashed, updated_at=now_ms())
            )
            conn.execute(sa.delete(sessions).where(sessions.c.user_id == uid))
            emit(conn, "user.password_changed", "user", name, actor, {})

    @staticmethod
    def _user_id(conn: Connection, name: str) -> int:
        uid = conn.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
        if uid is None:
            raise NotFoundError(
                f"user {name!r} does not exist", hint="list users with `loopline users list`"
            )
        return int(uid)

    # -- authentication --------------------------------------------------------------
    def _principal(
        self, conn: Connection, row: Any, via: str, csrf: str | None = None
    ) -> Principal:
        return Principal(
            name=row.name,
            user_id=row.id,
            is_admin=bool(row.is_admin),
            roles=self._roles(conn, row.id),
            via=via,
            csrf_token=csrf,
        )

    @staticmethod
    def _roles(conn: Connection, user_id: int) -> dict[str, Role]:
        return {
            r.name: Role.parse(r.role)
            for r in conn.execute(
                sa.select(projects.c.name, project_members.c.role)
                .join(projects, projects.c.id == project_members.c.project_id)
                .where(project_members.c.user_id == user_id)
            )
        }

    def roles_of(self, user_id: int) -> dict[str, Role]:
        """A user's role in each project they belong to."""
        with self.db.read() as conn:
            return self._roles(conn, user_id)

    def authenticate_password(self, name: str, password: str) -> Principal | None:
        """The user when the password matches and they are enabled, else None."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        ok = verify_password(row.password_hash if row is not None else None, password)
        if row is None or not ok or row.disabled:
            return None
        with self.db.read() as conn:
            return self._principal(conn, row, "password")

    def user_stamp(self, name: str) -> int | None:
        """When ``name`` last changed (password, enabled), to tell a stale cache entry."""
        with self.db.read() as conn:
            value = conn.execute(sa.select(users.c.updated_at).where(users.c.name == name)).scalar()
        return None if value is None else int(value)

    def principal_if_unchanged(self, user_id: int, stamp: int, via: str) -> Principal | None:
        """The user with their current roles, unless disabled or changed since ``stamp``."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users).where(
                    users.c.id == user_id,
                    users.c.updated_at == stamp,
                    users.c.disabled.is_(sa.false()),
                )
            ).first()
            return None if row is None else self._principal(conn, row, via)

    def principal_by_name(self, name: str, via: str) -> Principal | None:
        """An enabled user vouched for elsewhere (single sign-on), with their roles."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users).where(users.c.name == name, users.c.disabled.is_(sa.false()))
            ).first()
            return None if row is None else self._principal(conn, row, via)

    def authenticate_token(self, token: str) -> Principal | None:
        """The token's user when it is known, unrevoked, unexpired and its user enabled."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        now = now_ms()
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(users, api_tokens.c.id.label("token_id"), api_tokens.c.last_used_at)
                .join(api_tokens, api_tokens.c.user_id == users.c.id)
                .where(
                    api_tokens.c.token_hash == digest(token),
                    api_tokens.c.revoked_at.is_(None),
                    sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
                    users.c.disabled.is_(sa.false()),
                )
            ).first()
            if found is None:
                return None
            principal = self._principal(conn, found, "token")
        if found.last_used_at is None or now - found.last_used_at > _TOUCH_EVERY_MS:
            with self.db.write() as conn:
                conn.execute(
                    sa.update(api_tokens)
                    .where(api_tokens.c.id == found.token_id)
                    .values(last_used_at=now)
                )
        return principal

    # -- tokens ----------------------------------------------------------------------
    def create_token(
        self, user: str, *, name: str = "", expires_in_days: float | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A new token for ``user``: the secret (shown once) and what is stored of it."""
        if expires_in_days is not None and expires_in_days <= 0:
            raise InvalidArgumentError(
                "a token's lifetime must be positive", hint="pass --expires-in DAYS > 0"
            )
        if len(name) > 256:
            raise InvalidArgumentError("a token's name is at most 256 characters")
        token = new_token()
        now = now_ms()
        expires = None if expires_in_days is None else now + int(expires_in_days * 86_400_000)
        with self.db.write() as conn:
            uid = self._user_id(conn, user)
            tid = conn.execute(
                sa.insert(api_tokens).returning(api_tokens.c.id),
                {
                    "user_id": uid,
                    "name": name,
                    "token_hash": digest(token),
                    "prefix": token[: len(TOKEN_PREFIX) + 4],
                    "created_at": now,
                    "expires_at": expires,
                },
            ).scalar_one()
            emit(conn, "token.created", "token", str(tid), user, {"name": name})
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == tid)).one()
        return token, _token_dict(row)

    def list_tokens(self, user: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            uid = self._user_id(conn, user)
            rows = conn.execute(
                sa.select(api_tokens).where(api_tokens.c.user_id == uid).order_by(api_tokens.c.id)
            ).all()
        return [_token_dict(r) for r in rows]

    def revoke_token(self, user: str, token_id: int, *, actor: str | None = None) -> None:
        """Revoke one of ``user``'s tokens; it stops working for the very next request."""
        with self.db.write() as conn:
            uid = self._user_id(conn, user)
            row = conn.execute(
                sa.select(api_tokens).where(
                    api_tokens.c.id == token_id, api_tokens.c.user_id == uid
                )
            ).first()
            if row is None:
                raise NotFoundError(
                    f"user {user!r} has no token {token_id}",
                    hint="list tokens with `loopline tokens list`",
                )
            if row.revoked_at is None:
                conn.execute(
                    sa.update(api_tokens)
                    .where(api_tokens.c.id == token_id)
                    .values(revoked_at=now_ms())
                )
                emit(conn, "token.revoked", "token", str(token_id), actor or user, {})

    # -- sessions (the web UI's cookies) ----------------------------------------------
    def create_session(self, principal: Principal) -> tuple[str, str]:
        """A session id (the cookie's value) and its CSRF token."""
        session_id, csrf = new_session_id(), new_session_id()
        now = now_ms()
        with self.db.write() as conn:
            conn.execute(sa.delete(sessions).where(sessions.c.expires_at < now))
            conn.execute(
                sa.insert(sessions),
                {
                    "id_hash": digest(session_id),
                    "user_id": principal.user_id,
                    "csrf_token": csrf,
                    "created_at": now,
                    "expires_at": now + SESSION_SECONDS * 1000,
                },
            )
        return session_id, csrf

    def authenticate_session(self, session_id: str) -> Principal | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users, sessions.c.csrf_token)
                .join(sessions, sessions.c.user_id == users.c.id)
                .where(
                    sessions.c.id_hash == digest(session_id),
                    sessions.c.expires_at > now_ms(),
                    users.c.disabled.is_(sa.false()),
                )
            ).first()
            if row is None:
                return None
            return self._principal(conn, row, "session", csrf=row.csrf_token)

    def end_session(self, session_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(sa.delete(sessions).where(sessions.c.id_hash == digest(session_id)))

    # -- projects and members --------------------------------------------------------
    def create_project(self, name: str, *, description: str = "", actor: str) -> dict[str, Any]:
        check_name("project", name)
        with self.db.write() as conn:
            if conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).first():
                raise AlreadyExistsError(f"project {name!r} already exists")
            pid = conn.execute(
                sa.insert(projects).returning(projects.c.id),
                {"name": name, "description": description, "created_at": now_ms()},
            ).scalar_one()
            emit(conn, "project.created", "project", name, actor, {}, pid)
        return {"id": pid, "name": name, "description": description}

    def list_projects(self, principal: Principal | None = None) -> list[dict[str, Any]]:
        """Every project (for ``principal``: those they belong to, all for admins)."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(projects).order_by(projects.c.name)).all()
            policies = {
                r.project_id: bool(r.four_eyes) for r in conn.execute(sa.select(project_policies))
            }
        out = []
        for r in rows:
            if principal is not None and principal.role_in(r.name) < Role.VIEWER:
                continue
            item = {"id": r.id, "name": r.name, "description": r.description}
            item["four_eyes"] = policies.get(r.id, False)
            if principal is not None:
                item["role"] = principal.role_in(r.name).label
            out.append(item)
        return out

    @staticmethod
    def project_id(conn: Connection, name: str) -> int:
        pid = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()
        if pid is None:
            raise NotFoundError(
                f"project {name!r} does not exist",
                hint="list projects with `loopline projects list`",
            )
        return int(pid)

    def set_member(self, project: str, user: str, role: Role, *, actor: str) -> None:
        if role not in PROJECT_ROLES:
            raise InvalidArgumentError(f"{role.label} is not a project role")
        with self.db.write() as conn:
            pid = self.project_id(conn, project)
            uid = self._user_id(conn, user)
            conn.execute(
                sa.delete(project_members).where(
                    project_members.c.project_id == pid, project_members.c.user_id == uid
                )
            )
            conn.execute(
                sa.insert(project_members),
                {
                    "project_id": pid,
                    "user_id": uid,
                    "role": role.label,
                    "added_by": actor,
                    "created_at": now_ms(),
                },
            )
            payload = {"user": user, "role": role.label}
            emit(conn, "project.member_set", "project", project, actor, payload, pid)

    def remove_member(self, project: str, user: str, *, actor: str) -> None:
        with self.db.write() as conn:
            pid = self.project_id(conn, project)
            uid = self._user_id(conn, user)
            gone = conn.execute(
                sa.delete(project_members).where(
                    project_members.c.project_id == pid, project_members.c.user_id == uid
                )
            ).rowcount
            if not gone:
                raise NotFoundError(f"{user!r} is not a member of project {project!r}")
            emit(conn, "project.member_removed", "project", project, actor, {"user": user}, pid)

    def members(self, project: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            pid = self.project_id(conn, project)
            rows = conn.execute(
                sa.select(users.c.name, project_members.c.role, project_members.c.added_by)
                .join(users, users.c.id == project_members.c.user_id)
                .where(project_members.c.project_id == pid)
                .order_by(users.c.name)
            ).all()
        return [{"user": r.name, "role": r.role, "added_by": r.added_by} for r in rows]

    def members_with_role(self, project_id: int, minimum: Role) -> list[str]:
        """Names of the enabled members of a project with at least ``minimum``."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(users.c.name, project_members.c.role)
                .join(users, users.c.id == project_members.c.user_id)
                .where(project_members.c.project_id == project_id, users.c.disabled.is_(False))
            ).all()
        return [r.name for r in rows if Role.parse(r.role) >= minimum]

    def four_eyes(self, project: str) -> bool:
        with self.db.read() as conn:
            value = conn.execute(
                sa.select(project_policies.c.four_eyes)
                .join(projects, projects.c.id == project_policies.c.project_id)
                .where(projects.c.name == project)
            ).scalar()
        return bool(value)

    def set_four_eyes(self, project: str, enabled: bool, *, actor: str) -> None:
        with self.db.write() as conn:
            pid = self.project_id(conn, project)
            conn.execute(sa.delete(project_policies).where(project_policies.c.project_id == pid))
            conn.execute(
                sa.insert(project_policies),
                {"project_id": pid, "four_eyes": enabled, "updated_at": now_ms()},
            )
            emit(
                conn,
                "project.policy_changed",
                "project",
                project,
                actor,
                {"four_eyes": enabled},
                pid,
            )

    def require_user_exists(self, name: str) -> None:
        """Raise unless ``name`` is a user (a cheap existence check)."""
        with self.db.read() as conn:
            self._user_id(conn, name)

    def ensure_not_last_admin(self, name: str) -> None:
        """Refuse to disable the last enabled server administrator."""
        with self.db.read() as conn:
            admins = (
                conn.execute(
                    sa.select(users.c.name).where(
                        users.c.is_admin.is_(True), users.c.disabled.is_(False)
                    )
                )
                .scalars()
                .all()
            )
        if list(admins) == [name]:
            raise InvalidStateError(
                f"{name!r} is the last enabled administrator",
                hint="create another administrator first (`loopline users create NAME --admin`)",
            )
