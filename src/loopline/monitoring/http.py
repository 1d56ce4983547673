"""Monitors through a server: :class:`MonitorHttpClient` calls ``/api/v1/monitors``.

What ``loopline.monitoring`` and ``loopline monitor`` use when the tracking URI is
``http(s)://``: the operations of :class:`~loopline.monitoring.service.MonitorService`
(create, run, list, show, runs, history, alerts, delete), run by the server on its
own store and prediction log. A run is not idempotent (it records results and
alerts), so it is retried only when the connection could not be made.

>>> c = MonitorHttpClient("http://127.0.0.1:5000/", user="ada")
>>> c.base_url, c.prefix
('http://127.0.0.1:5000', '/api/v1/monitors')
>>> c.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from loopline.client.session import ApiSession
from loopline.monitoring.service import check_name

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["MonitorHttpClient"]


def _path(name: str, suffix: str = "") -> str:
    # Checked before it becomes part of a URL: no '/' or '..' reaches the server.
    return f"/{quote(check_name(name), safe='')}{suffix}"


class MonitorHttpClient(ApiSession):
    """Every :class:`~loopline.monitoring.service.MonitorApi` operation over HTTP."""

    server_hint = "is this URL a loopline server with the monitors API?"
    prefix = "/api/v1/monitors"

    def _root(self) -> str:
        # httpx would add a slash to a relative "" (a redirect from FastAPI): ask in full.
        return self.base_url + self.prefix

    def create(
        self,
        name: str,
        *,
        deployment: str,
        reference: str,
        target: str | None = None,
        prediction: str | None = None,
        window: str = "1h",
        schedule: str | None = None,
        webhook: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {
            "name": check_name(name), "deployment": deployment, "reference": reference,
            "target": target, "prediction": prediction, "window": window,
            "schedule": schedule, "webhook": webhook, "config": config,
        }  # fmt: skip
        found: dict[str, Any] = self._call("POST", self._root(), json=body)["monitor"]
        return found

    def run(self, name: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Run on the server; ``now`` is the server's clock (a client's is not trusted)."""
        found: dict[str, Any] = self._call("POST", _path(name, "/run"))["run"]
        return found

    def list_all(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", self._root())["monitors"]
        return found

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", _path(name))["monitor"]
        return found

    def delete(self, name: str) -> None:
        self._call("DELETE", _path(name))

    def runs(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call(
            "GET", _path(name, "/runs"), params={"limit": limit}
        )["runs"]
        return found

    def run_detail(self, name: str, run_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", _path(name, f"/runs/{int(run_id)}"))["run"]
        return found

    def history(
        self,
        name: str,
        *,
        column: str | None = None,
        category: str | None = None,
        metric: str | None = None,
    ) -> list[dict[str, Any]]:
        params = {"column": column, "category": category, "metric": metric}
        found: list[dict[str, Any]] = self._call("GET", _path(name, "/history"), params=params)[
            "history"
        ]
        return found

    def alerts(self, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        url = _path(name, "/alerts") if name is not None else "/alerts"
        found: list[dict[str, Any]] = self._call("GET", url, params={"limit": limit})["alerts"]
        return found
