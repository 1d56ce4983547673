"""One interface to user and project management, on a local store or through a server.

The command line works on whatever the settings name: the embedded store or a
database URL (whoever can open the database is its administrator, which is how the
first admin is created), or a server, where the caller's token decides what is
allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from loopline.client.session import ApiSession

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.config import Settings

__all__ = ["AccessClient", "HttpAccess", "LocalAccess", "open_access"]


class AccessClient(Protocol):
    def create_user(
        self, name: str, password: str | None, *, email: str, admin: bool
    ) -> dict[str, Any]: ...
    def list_users(self) -> list[dict[str, Any]]: ...
    def set_disabled(self, name: str, disabled: bool) -> dict[str, Any]: ...
    def create_token(
        self, user: str | None, name: str, expires_in_days: float | None
    ) -> tuple[str, dict[str, Any]]: ...
    def list_tokens(self, user: str | None) -> list[dict[str, Any]]: ...
    def revoke_token(self, user: str | None, token_id: int) -> None: ...
    def create_project(self, name: str, description: str) -> dict[str, Any]: ...
    def list_projects(self) -> list[dict[str, Any]]: ...
    def members(self, project: str) -> list[dict[str, Any]]: ...
    def set_member(self, project: str, user: str, role: str) -> None: ...
    def remove_member(self, project: str, user: str) -> None: ...
    def set_four_eyes(self, project: str, enabled: bool) -> None: ...
    def audit(self, **filters: Any) -> Iterator[dict[str, Any]]: ...
    def add_webhook(self, url: str, project: str | None) -> dict[str, Any]: ...
    def list_webhooks(self, project: str | None) -> list[dict[str, Any]]: ...
    def remove_webhook(self, hook_id: int) -> None: ...
    def close(self) -> None: ...


def open_access(settings: Settings) -> AccessClient:
    if settings.remote:
        assert settings.tracking_uri is not None
        return HttpAccess(
            settings.tracking_uri, token=settings.token, user=settings.user, retries=2
        )
    return LocalAccess(settings)


class LocalAccess:
    """Straight to the metadata store, acting as ``settings.user``."""

    def __init__(self, settings: Settings) -> None:
        from loopline.auth.collab import CollabStore
        from loopline.auth.store import AuthStore
        from loopline.auth.webhooks import WebhookStore
        from loopline.store.metadata import Database

        self.db = Database(settings.metadata_url)
        self.store = AuthStore(self.db)
        self.collab = CollabStore(self.db)
        self.hooks = WebhookStore(self.db)
        self.actor = settings.user

    def close(self) -> None:
        self.db.close()

    def _owner(self, user: str | None) -> str:
        return user or self.actor

    def create_user(
        self, name: str, password: str | None, *, email: str, admin: bool
    ) -> dict[str, Any]:
        return self.store.create_user(name, password, email=email, is_admin=admin, actor=self.actor)

    def list_users(self) -> list[dict[str, Any]]:
        return self.store.list_users()

    def set_disabled(self, name: str, disabled: bool) -> dict[str, Any]:
        if disabled:
            self.store.get_user(name)
            self.store.ensure_not_last_admin(name)
        return self.store.set_disabled(name, disabled, actor=self.actor)

    def create_token(
        self, user: str | None, name: str, expires_in_days: float | None
    ) -> tuple[str, dict[str, Any]]:
        return self.store.create_token(
            self._owner(user), name=name, expires_in_days=expires_in_days
        )

    def list_tokens(self, user: str | None) -> list[dict[str, Any]]:
        return self.store.list_tokens(self._owner(user))

    def revoke_token(self, user: str | None, token_id: int) -> None:
        self.store.revoke_token(self._owner(user), token_id, actor=self.actor)

    def create_project(self, name: str, description: str) -> dict[str, Any]:
        return self.store.create_project(name, description=description, actor=self.actor)

    def list_projects(self) -> list[dict[str, Any]]:
        return self.store.list_projects()

    def members(self, project: str) -> list[dict[str, Any]]:
        return self.store.members(project)

    def set_member(self, project: str, user: str, role: str) -> None:
        from loopline.auth.roles import Role

        self.store.set_member(project, user, Role.parse(role), actor=self.actor)

    def remove_member(self, project: str, user: str) -> None:
        self.store.remove_member(project, user, actor=self.actor)

    def set_four_eyes(self, project: str, enabled: bool) -> None:
        self.store.set_four_eyes(project, enabled, actor=self.actor)

    def audit(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self.collab.iter_audit(**filters)

    def add_webhook(self, url: str, project: str | None) -> dict[str, Any]:
        user = None if project is not None else self.actor
        return self.hooks.add(url, user=user, project=project, actor=self.actor)

    def list_webhooks(self, project: str | None) -> list[dict[str, Any]]:
        if project is not None:
            return self.hooks.list(project=project)
        return self.hooks.list(user=self.actor)

    def remove_webhook(self, hook_id: int) -> None:
        self.hooks.remove(hook_id)


class HttpAccess(ApiSession):
    """The same operations through a server's ``/api/v1`` (the token decides what is allowed)."""

    def create_user(
        self, name: str, password: str | None, *, email: str, admin: bool
    ) -> dict[str, Any]:
        body = {"name": name, "password": password, "email": email, "admin": admin}
        return dict(self._call("POST", "/users", json=body)["user"])

    def list_users(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/users")["users"])

    def set_disabled(self, name: str, disabled: bool) -> dict[str, Any]:
        action = "disable" if disabled else "enable"
        return dict(self._call("POST", f"/users/{quote(name, safe='')}/{action}")["user"])

    def create_token(
        self, user: str | None, name: str, expires_in_days: float | None
    ) -> tuple[str, dict[str, Any]]:
        body = {"name": name, "expires_in_days": expires_in_days}
        answer = dict(self._call("POST", "/tokens", params={"user": user}, json=body))
        return str(answer.pop("token")), answer

    def list_tokens(self, user: str | None) -> list[dict[str, Any]]:
        return list(self._call("GET", "/tokens", params={"user": user})["tokens"])

    def revoke_token(self, user: str | None, token_id: int) -> None:
        self._call("DELETE", f"/tokens/{token_id}", params={"user": user})

    def create_project(self, name: str, description: str) -> dict[str, Any]:
        body = {"name": name, "description": description}
        return dict(self._call("POST", "/projects", json=body)["project"])

    def list_projects(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/projects")["projects"])

    def members(self, project: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/projects/{quote(project, safe='')}/members")["members"])

    def set_member(self, project: str, user: str, role: str) -> None:
        path = f"/projects/{quote(project, safe='')}/members/{quote(user, safe='')}"
        self._call("PUT", path, json={"role": role})

    def remove_member(self, project: str, user: str) -> None:
        path = f"/projects/{quote(project, safe='')}/members/{quote(user, safe='')}"
        self._call("DELETE", path)

    def set_four_eyes(self, project: str, enabled: bool) -> None:
        path = f"/projects/{quote(project, safe='')}/policy"
        self._call("PUT", path, json={"four_eyes": enabled})

    def audit(self, **filters: Any) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            params = {**filters, "after_id": after, "limit": 5000}
            page = list(self._call("GET", "/audit", params=params)["entries"])
            yield from page
            if len(page) < 5000:
                return
            after = int(page[-1]["id"])

    def add_webhook(self, url: str, project: str | None) -> dict[str, Any]:
        body = {"url": url, "project": project}
        return dict(self._call("POST", "/webhooks", json=body)["webhook"])

    def list_webhooks(self, project: str | None) -> list[dict[str, Any]]:
        return list(self._call("GET", "/webhooks", params={"project": project})["webhooks"])

    def remove_webhook(self, hook_id: int) -> None:
        self._call("DELETE", f"/webhooks/{hook_id}")
