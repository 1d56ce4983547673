"""Deployments through a server: :class:`DeploymentHttpClient` calls ``/api/v1/deployments``.

It is what ``loopline deploy`` uses when the tracking URI is ``http(s)://``: the
same operations as :class:`~loopline.serving.deployments.DeploymentService`, with
the caller's identity and token sent by :class:`~loopline.client.session.ApiSession`
and the server's errors raised again as the same :class:`~loopline.errors.LooplineError`.
Changes are not idempotent (each one bumps the revision), so they are retried only
when the connection could not be made.

>>> c = DeploymentHttpClient("http://127.0.0.1:5000/", user="ada")
>>> c.base_url, c.prefix
('http://127.0.0.1:5000', '/api/v1/deployments')
>>> c.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from loopline.client.session import ApiSession
from loopline.serving.deployments import Deployment, DeploymentChange, check_deployment_name

if TYPE_CHECKING:
    import builtins

__all__ = ["DeploymentHttpClient"]


def _path(name: str, suffix: str = "") -> str:
    # The name is checked before it becomes part of a URL: no '/' or '..' reaches the server.
    return f"/{quote(check_deployment_name(name), safe='')}{suffix}"


class DeploymentHttpClient(ApiSession):
    """Every :class:`~loopline.serving.deployments.DeploymentApi` operation over HTTP."""

    server_hint = "is this URL a loopline server with the deployments API?"
    prefix = "/api/v1/deployments"

    def _root(self) -> str:
        # httpx would add a slash to a relative "" (a redirect from FastAPI): ask in full.
        return self.base_url + self.prefix

    def get(self, name: str) -> Deployment:
        return Deployment.from_dict(self._call("GET", _path(name)))

    def list(self) -> builtins.list[Deployment]:
        found = self._call("GET", self._root())
        return [Deployment.from_dict(d) for d in found["deployments"]]

    def history(self, name: str) -> builtins.list[DeploymentChange]:
        found = self._call("GET", _path(name, "/history"))
        return [DeploymentChange.from_dict(h) for h in found["history"]]

    def create(
        self,
        name: str,
        model_uri: str,
        *,
        limits: dict[str, Any] | None = None,
        logging: dict[str, Any] | None = None,
    ) -> Deployment:
        body: dict[str, Any] = {"name": check_deployment_name(name), "model": model_uri}
        body |= {"limits": limits or {}, "logging": logging or {}}
        return Deployment.from_dict(self._call("POST", self._root(), json=body))

    def set_canary(
        self,
        name: str,
        model_uri: str,
        percent: float,
        *,
        limits: dict[str, Any] | None = None,
    ) -> Deployment:
        body: dict[str, Any] = {"model": model_uri, "percent": percent}
        if limits:
            body["limits"] = limits
        return Deployment.from_dict(self._call("POST", _path(name, "/canary"), json=body))

    def set_shadow(self, name: str, model_uri: str | None) -> Deployment:
        if model_uri is None:
            return Deployment.from_dict(self._call("DELETE", _path(name, "/shadow")))
        body = {"model": model_uri}
        return Deployment.from_dict(self._call("POST", _path(name, "/shadow"), json=body))

    def set_limits(self, name: str, limits: dict[str, Any]) -> Deployment:
        return Deployment.from_dict(self._call("PUT", _path(name, "/limits"), json=limits))

    def promote(self, name: str) -> Deployment:
        return Deployment.from_dict(self._call("POST", _path(name, "/promote"), json={}))

    def rollback(self, name: str, *, reason: str = "") -> Deployment:
        body = {"reason": reason}
        return Deployment.from_dict(self._call("POST", _path(name, "/rollback"), json=body))
