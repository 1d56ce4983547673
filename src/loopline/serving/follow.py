"""Keeping a running server in step with the registry and its deployment.

A background thread polls the event log. When the alias a server follows moves
(``model.alias_moved``), or its deployment changes (``deployment.*``), it loads the
versions now wanted (in this thread, while requests keep being answered by the
models in place) and then swaps them into their slots. The same thread rolls a
canary back when it breaches its deployment's limits, and promotes it when the
deployment's promotion rule holds (``promote_after_requests``/``promote_after_seconds``,
judged on the traffic this process answered).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.errors import LooplineError
from loopline.serving.endpoint import Limits

if TYPE_CHECKING:
    from loopline.client.client import Client
    from loopline.config import Settings
    from loopline.serving.deployments import DeploymentService
    from loopline.serving.endpoint import Endpoint, Slot
    from loopline.serving.model import ServedModel

__all__ = ["Follower"]

_KINDS = ["model.alias_moved", "deployment.*"]


@dataclass(slots=True)
class _AliasWatch:
    endpoint: Endpoint
    model: str
    alias: str


@dataclass(slots=True)
class _DeploymentWatch:
    endpoint: Endpoint
    name: str
    service: DeploymentService
    revision: int = 0
    model: str = ""
    alias: str | None = None
    canary_started_at: float | None = None
    """Wall-clock seconds the current canary started (from the deployment)."""
    failed_promotion: tuple[str, str] | None = None
    """The canary (model, version) this process failed to promote: not tried again."""


class Follower:
    """Watches the event log for the endpoints it was given."""

    def __init__(
        self, settings: Settings, *, poll_interval: float = 0.5, trusted: bool = False
    ) -> None:
        self.settings = settings
        self.poll_interval = poll_interval
        self.trusted = trusted
        self.after_id = 0
        self.aliases: list[_AliasWatch] = []
        self.deployments: list[_DeploymentWatch] = []
        self.errors: list[str] = []
        self.swaps = 0
        self._client: Client | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow_alias(self, endpoint: Endpoint, model: str, alias: str) -> None:
        self.aliases.append(_AliasWatch(endpoint, model, alias))

    def follow_deployment(self, endpoint: Endpoint, name: str, service: DeploymentService) -> None:
        self.deployments.append(_DeploymentWatch(endpoint, name, service))

    @property
    def active(self) -> bool:
        return bool(self.aliases or self.deployments)

    def client(self) -> Client:
        if self._client is None:
            from loopline.client.client import Client

            self._client = Client(settings=self.settings)
        return self._client

    def prime(self) -> None:
        """Start from the newest event: what happened before is in the state loaded now."""
        while True:
            events = self.client().events(after_id=self.after_id, limit=1000)
            if not events:
                return
            self.after_id = events[-1].id

    # -- the thread ----------------------------------------------------------------------
    def start(self) -> None:
        if not self.active or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="loopline-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def after_fork(self) -> None:
        """Forget connections inherited from the parent process (never share them)."""
        self._client = None
        for watch in self.deployments:
            with contextlib.suppress(Exception):
                watch.service.db.engine.dispose(close=False)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.poll()
            except Exception as exc:  # keep serving what is loaded; retry on the next tick
                self.errors.append(f"{type(exc).__name__}: {exc}")
                del self.errors[:-20]

    def poll(self) -> None:
        """One round: apply new events, then check the canaries' limits."""
        events = self.client().events(after_id=self.after_id, kinds=_KINDS, limit=1000)
        for event in events:
            self.after_id = event.id
            self._apply(event.kind, event.entity_id, event.payload)
        for watch in self.deployments:
            self._check_canary(watch)

    def _apply(self, kind: str, entity_id: str, payload: dict[str, Any]) -> None:
        if kind == "model.alias_moved":
            for watch in self.aliases:
                if payload.get("model") == watch.model and payload.get("alias") == watch.alias:
                    version = payload.get("to_version")
                    if version is not None:
                        self._swap(
                            watch.endpoint.primary, watch.endpoint, watch.model, int(version)
                        )
            for dwatch in self.deployments:
                if payload.get("model") == dwatch.model and payload.get("alias") == dwatch.alias:
                    self.reconcile(dwatch)
        elif kind.startswith("deployment."):
            for dwatch in self.deployments:
                if entity_id == dwatch.name:
                    self.reconcile(dwatch)

    # -- loading and swapping ------------------------------------------------------------
    def _load(self, model: str, version: int, name: str) -> ServedModel:
        from loopline.serving.model import load_served

        return load_served(f"models:/{model}/{version}", name=name, trusted=self.trusted)

    def _swap(self, slot: Slot, endpoint: Endpoint, model: str, version: int) -> None:
        current = slot.model
        if current is not None and current.version == str(version):
            return
        loaded = self._load(model, version, current.name if current else endpoint.name)
        slot.model = loaded  # atomic: requests read the slot once
        self.swaps += 1

    def reconcile(self, watch: _DeploymentWatch) -> None:
        """Bring the endpoint's slots to the deployment's current state."""
        deployment = watch.service.get(watch.name)
        endpoint = watch.endpoint
        watch.revision = deployment.revision
        watch.model, watch.alias = deployment.model, deployment.alias
        since = watch.service.canary_since(watch.name) if deployment.canary else None
        watch.canary_started_at = None if since is None else since / 1000.0
        endpoint.limits = Limits.from_dict(deployment.limits)
        with endpoint.lock:
            if deployment.current_version is not None:
                self._swap(endpoint.primary, endpoint, deployment.model, deployment.current_version)
            endpoint.canary, endpoint.canary_percent = (
                self._variant(endpoint, endpoint.canary, "canary", deployment.canary),
                float((deployment.canary or {}).get("percent", 0.0)),
            )
            endpoint.shadow = self._variant(endpoint, endpoint.shadow, "shadow", deployment.shadow)

    def _variant(
        self, endpoint: Endpoint, slot: Slot | None, variant: str, spec: dict[str, Any] | None
    ) -> Slot | None:
        if spec is None:
            return None
        model, version = str(spec["model"]), int(spec["version"])
        if (
            slot is not None
            and slot.model is not None
            and slot.model.name == model
            and slot.model.version == str(version)
        ):
            return slot
        fresh = endpoint.new_slot(variant, self._load(model, version, model))
        return fresh

    def _check_canary(self, watch: _DeploymentWatch) -> None:
        """Roll a breaching canary back; else promote one its deployment's rule passes."""
        endpoint = watch.endpoint
        canary = endpoint.canary
        if canary is None or canary.model is None:
            return
        reason = canary.stats.breach(endpoint.limits)
        if reason is None:
            self._maybe_promote(watch, canary)
            return
        try:
            watch.service.rollback(
                watch.name, reason=f"automatic rollback: canary {reason}", automatic=True
            )
        except LooplineError as exc:
            self.errors.append(str(exc))
            return
        canary.stats.clear()
        self.reconcile(watch)

    def _maybe_promote(self, watch: _DeploymentWatch, canary: Slot) -> None:
        assert canary.model is not None
        key = (canary.model.name, canary.model.version)
        if watch.failed_promotion == key or watch.canary_started_at is None:
            return
        live = max(0.0, time.time() - watch.canary_started_at)
        earned = canary.stats.promotion(watch.endpoint.limits, live)
        if earned is None:
            return
        try:
            watch.service.promote(
                watch.name,
                reason=f"automatic promotion: canary {earned}",
                automatic=True,
                version=int(canary.model.version),
            )
        except LooplineError as exc:
            # A refusal (a protected alias, say) would be refused again on every tick.
            watch.failed_promotion = key
            self.errors.append(str(exc))
            return
        self.reconcile(watch)
