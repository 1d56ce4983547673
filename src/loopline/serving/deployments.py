"""Deployments: a named endpoint that follows a model alias, with canary and shadow rollouts.

A deployment follows ``models:/NAME@ALIAS`` (or pins ``models:/NAME/VERSION``). A
canary is a pinned version that takes a share of the traffic; a shadow is a pinned
version that sees every request but whose answers are only logged. ``promote`` moves
the followed alias to the canary's version; ``rollback`` drops the canary, or, with
none, moves the alias back to the version it held before (from the alias history).

Every change bumps the deployment's ``revision``, appends the resulting state to its
history and emits a ``deployment.*`` event in the same transaction; serving
processes watch those events and reconcile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import sqlalchemy as sa

from loopline.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
)
from loopline.events import emit
from loopline.refs import parse_model_uri
from loopline.store.metadata.schema import projects
from loopline.store.metadata.schema_serving import deployment_history, deployments

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

    from loopline.registry.service import RegistryService
    from loopline.store.metadata import Database

__all__ = [
    "Deployment",
    "DeploymentApi",
    "DeploymentChange",
    "DeploymentService",
    "check_deployment_name",
    "describe_limits",
    "open_deployment_api",
    "open_deployments",
]

_NAME_HINT = "use letters, digits, '.', '_' and '-' (at most 128 characters, not all digits)"


@dataclass(slots=True)
class Deployment:
    """A deployment and its routing state."""

    name: str
    model: str
    alias: str | None
    version: int | None
    """The pinned version when the deployment follows no alias."""
    canary: dict[str, Any] | None = None
    """``{"model", "version", "percent"}``."""
    shadow: dict[str, Any] | None = None
    """``{"model", "version"}``."""
    limits: dict[str, Any] = field(default_factory=dict)
    logging: dict[str, Any] = field(default_factory=dict)
    revision: int = 1
    created_at: int = 0
    created_by: str = ""
    updated_at: int = 0
    current_version: int | None = None
    """The version the alias points at now (filled in by reads)."""

    @property
    def model_uri(self) -> str:
        if self.alias:
            return f"models:/{self.model}@{self.alias}"
        return f"models:/{self.model}/{self.version}"

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "version": self.version,
            "canary": self.canary,
            "shadow": self.shadow,
            "limits": self.limits,
            "logging": self.logging,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_uri": self.model_uri,
            **self.state(),
            "current_version": self.current_version,
            "revision": self.revision,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        """The inverse of :meth:`to_dict` (what the REST API answers)."""
        return cls(
            name=data["name"],
            model=data["model"],
            alias=data.get("alias"),
            version=data.get("version"),
            canary=data.get("canary"),
            shadow=data.get("shadow"),
            limits=data.get("limits") or {},
            logging=data.get("logging") or {},
            revision=int(data.get("revision", 1)),
            created_at=int(data.get("created_at", 0)),
            created_by=data.get("created_by", ""),
            updated_at=int(data.get("updated_at", 0)),
            current_version=data.get("current_version"),
        )


@dataclass(slots=True)
class DeploymentChange:
    """One entry of a deployment's history: what changed, who, why, and the state after."""

    revision: int
    action: str
    actor: str
    reason: str
    state: dict[str, Any]
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "action": self.action,
            "actor": self.actor,
            "reason": self.reason,
            "state": self.state,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentChange:
        return cls(
            int(data["revision"]),
            data["action"],
            data.get("actor", ""),
            data.get("reason", ""),
            data.get("state") or {},
            int(data.get("created_at", 0)),
        )


class DeploymentApi(Protocol):
    """What the CLI asks of deployments: the store itself or a server (``serving.http``)."""

    def get(self, name: str) -> Deployment: ...
    def list(self) -> builtins.list[Deployment]: ...
    def history(self, name: str) -> builtins.list[DeploymentChange]: ...
    def create(
        self,
        name: str,
        model_uri: str,
        *,
        limits: dict[str, Any] | None = None,
        logging: dict[str, Any] | None = None,
    ) -> Deployment: ...
    def set_canary(
        self,
        name: str,
        model_uri: str,
        percent: float,
        *,
        limits: dict[str, Any] | None = None,
    ) -> Deployment: ...
    def set_shadow(self, name: str, model_uri: str | None) -> Deployment: ...
    def set_limits(self, name: str, limits: dict[str, Any]) -> Deployment: ...
    def promote(self, name: str) -> Deployment: ...
    def rollback(self, name: str, *, reason: str = "") -> Deployment: ...
    def close(self) -> None: ...


def check_deployment_name(name: str) -> str:
    """A deployment name also names a folder of the prediction log: keep it plain.

    >>> check_deployment_name("churn-prod")
    'churn-prod'
    """
    import re

    if (
        not isinstance(name, str)
        or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", name)
        or name.isdigit()
    ):
        raise InvalidArgumentError(f"invalid deployment name {name!r}", hint=_NAME_HINT)
    return name


def _now() -> int:
    return int(time.time() * 1000)


class DeploymentService:
    """Deployments over a metadata database, moving aliases through ``registry``."""

    def __init__(
        self, db: Database, registry: RegistryService, *, actor: str, project: str = "default"
    ) -> None:
        self.db = db
        self.registry = registry
        self.actor = actor
        self.project = project

    def close(self) -> None:
        self.db.close()

    # -- reads ---------------------------------------------------------------------------
    def get(self, name: str) -> Deployment:
        with self.db.read() as conn:
            row = self._row(conn, name)
        return self._current(_from_row(row))

    def list(self) -> builtins.list[Deployment]:
        with self.db.read() as conn:
            pid = self._project_id(conn)
            rows = conn.execute(
                sa.select(deployments)
                .where(deployments.c.project_id == pid)
                .order_by(deployments.c.name)
            ).all()
        return [self._current(_from_row(r)) for r in rows]

    def history(self, name: str) -> builtins.list[DeploymentChange]:
        with self.db.read() as conn:
            row = self._row(conn, name)
            rows = conn.execute(
                sa.select(deployment_history)
                .where(deployment_history.c.deployment_id == row.id)
                .order_by(deployment_history.c.id)
            ).all()
        return [
            DeploymentChange(
                r.revision, r.action, r.actor, r.reason, orjson.loads(r.state), r.created_at
            )
            for r in rows
        ]

    def canary_since(self, name: str) -> int | None:
        """When (ms) the current canary's version started taking traffic; None without one.

        From the history: a new share of the same version keeps the time it started,
        which ``promote_after_seconds`` counts from.
        """
        since = None
        current: Any = None
        for change in reversed(self.history(name)):
            spec = change.state.get("canary")
            key = None if spec is None else (spec["model"], spec["version"])
            if current is None:
                current = key
            if key is None or key != current:
                break
            since = change.created_at
        return since

    def _current(self, deployment: Deployment) -> Deployment:
        if deployment.alias:
            try:
                found = self.registry.resolve(f"models:/{deployment.model}@{deployment.alias}")
                deployment.current_version = found.version
            except NotFoundError:
                deployment.current_version = None
        else:
            deployment.current_version = deployment.version
        return deployment

    # -- changes -------------------------------------------------------------------------
    def create(
        self,
        name: str,
        model_uri: str,
        *,
        limits: dict[str, Any] | None = None,
        logging: dict[str, Any] | None = None,
    ) -> Deployment:
        """A new deployment of ``models:/NAME@ALIAS`` (followed) or ``models:/NAME/VERSION``."""
        check_deployment_name(name)
        checked = _check_limits(limits or {})
        _check_rule(checked)
        model, alias, version = self._target(model_uri)
        state = Deployment(
            name,
            model,
            alias,
            version,
            limits=checked,
            logging=dict(logging or {}),
        ).state()
        now = _now()
        with self.db.write() as conn:
            pid = self._project_id(conn)
            exists = conn.execute(
                sa.select(deployments.c.id).where(
                    deployments.c.project_id == pid, deployments.c.name == name
                )
            ).first()
            if exists is not None:
                raise AlreadyExistsError(
                    f"deployment {name!r} already exists",
                    hint=f"see it with `loopline deploy status {name}`",
                )
            deployment_id = conn.execute(
                sa.insert(deployments)
                .values(
                    project_id=pid,
                    name=name,
                    model_name=model,
                    state=orjson.dumps(state).decode(),
                    revision=1,
                    created_at=now,
                    created_by=self.actor,
                    updated_at=now,
                )
                .returning(deployments.c.id)
            ).scalar_one()
            self._record(conn, pid, deployment_id, name, 1, "created", "", state)
        return self.get(name)

    def set_canary(
        self,
        name: str,
        model_uri: str,
        percent: float,
        *,
        limits: dict[str, Any] | None = None,
    ) -> Deployment:
        """Send ``percent`` of the traffic to a pinned version.

        ``limits`` changes some limits or the promotion rule in the same revision, so a
        server never sees the canary under the old rule.
        """
        if not 0 < percent <= 100:
            raise InvalidArgumentError(
                f"a canary takes between 0 and 100 percent of traffic, got {percent}"
            )
        changes = _check_limits(limits or {})
        model, version = self._pinned(model_uri)
        if changes:
            _check_rule({**self.get(name).limits, **changes})

        def update(d: Deployment) -> Deployment:
            spec = {"model": model, "version": version, "percent": percent}
            return _with(d, canary=spec, limits={**d.limits, **changes})

        reason = f"{percent:g}% of traffic to {model} version {version}"
        if changes:
            reason += "; " + describe_limits(changes)
        return self._change(name, "canary_started", update, reason=reason)

    def set_shadow(self, name: str, model_uri: str | None) -> Deployment:
        if model_uri is None:
            return self._change(name, "shadow_removed", lambda d: _with(d, shadow=None))
        model, version = self._pinned(model_uri)
        return self._change(
            name,
            "shadow_set",
            lambda d: _with(d, shadow={"model": model, "version": version}),
            reason=f"mirrors traffic to {model} version {version}",
        )

    def set_limits(self, name: str, limits: dict[str, Any]) -> Deployment:
        """Change some of the limits that roll a canary back; the others stay."""
        changes = _check_limits(limits)
        _check_rule({**self.get(name).limits, **changes})
        return self._change(
            name,
            "limits_changed",
            lambda d: _with(d, limits={**d.limits, **changes}),
            reason=describe_limits(changes),
        )

    def promote(
        self,
        name: str,
        *,
        reason: str = "",
        automatic: bool = False,
        version: int | None = None,
    ) -> Deployment:
        """The canary's version becomes the deployment's: the followed alias moves to it.

        ``automatic`` is a serving process applying the promotion rule: when the canary
        is gone (another process promoted or rolled it back) or is not ``version`` (the
        one it judged), nothing happens, so several processes promote it once.
        """
        deployment = self.get(name)
        canary = deployment.canary
        if canary is None or (version is not None and int(canary["version"]) != version):
            if automatic:
                return deployment
            if canary is None:
                raise InvalidStateError(
                    f"deployment {name!r} has no canary to promote",
                    hint=f"start one with `loopline deploy canary {name} --model URI`",
                )
            raise InvalidStateError(
                f"deployment {name!r}'s canary is version {canary['version']}, not {version}",
                hint=f"see it with `loopline deploy status {name}`",
            )
        number = int(canary["version"])
        if canary["model"] != deployment.model:
            raise InvalidStateError(
                f"the canary is a version of {canary['model']!r}, the deployment "
                f"serves {deployment.model!r}: promoting cannot move an alias across models"
            )
        who = "automatic" if automatic else "manual"
        why = reason or f"{who} promotion of canary version {number}"
        alias = deployment.alias

        def move_alias(conn: Connection) -> None:
            assert alias is not None
            self.registry.set_alias_in(
                conn, deployment.model, alias, number, reason=f"deployment {name}: {why}"
            )

        # One transaction that checks the canary is still there, ends it and moves the
        # alias: of two processes (or a promotion racing a rollback) one wins; a canary
        # rolled back meanwhile never becomes the champion; no server ever reads the
        # canary ended with the alias not yet moved (all traffic on the old version); and
        # an alias the registry refuses to move (protected, the version not approved)
        # undoes the whole promotion.
        claimed = self._apply(
            name,
            "promoted",
            lambda d: _with(d, canary=None, version=d.version if d.alias else number),
            reason=why,
            expect_canary=number,
            then=move_alias if alias else None,
        )
        if not claimed:
            if automatic:
                return self.get(name)
            raise InvalidStateError(
                f"deployment {name!r}'s canary changed while it was being promoted",
                hint=f"see it with `loopline deploy status {name}`",
            )
        return self.get(name)

    def rollback(self, name: str, *, reason: str = "", automatic: bool = False) -> Deployment:
        """Drop the canary; with none, move the alias back to its previous version."""
        deployment = self.get(name)
        who = "automatic" if automatic else "manual"
        if deployment.canary is not None:
            version = deployment.canary["version"]
            why = reason or f"{who} rollback of canary version {version}"
            return self._change(
                name,
                "canary_rolled_back",
                lambda d: _with(d, canary=None),
                reason=why,
                expect_canary=version if automatic else None,
            )
        if automatic:
            return deployment
        if not deployment.alias:
            raise InvalidStateError(
                f"deployment {name!r} pins version {deployment.version} and has no canary: "
                "there is nothing to roll back",
                hint="deploy another version with `loopline deploy create`",
            )
        previous = self._previous_version(deployment)
        why = reason or (
            f"deployment {name}: roll back {deployment.alias} from version "
            f"{deployment.current_version} to {previous}"
        )
        self.registry.set_alias(deployment.model, deployment.alias, previous, reason=why)
        return self._change(name, "rolled_back", lambda d: d, reason=why)

    def _previous_version(self, deployment: Deployment) -> int:
        assert deployment.alias is not None
        history = self.registry.alias_history(deployment.model, deployment.alias)
        for change in reversed(history):
            if change.to_version == deployment.current_version and change.from_version:
                return int(change.from_version)
        raise InvalidStateError(
            f"alias {deployment.alias!r} of {deployment.model!r} has no earlier version to go "
            "back to",
            hint=f"see `loopline models alias history {deployment.model} {deployment.alias}`",
        )

    def _change(self, name: str, action: str, update: Any, **options: Any) -> Deployment:
        """:meth:`_apply`, then the deployment as it is now."""
        self._apply(name, action, update, **options)
        return self.get(name)

    def _apply(
        self,
        name: str,
        action: str,
        update: Any,
        *,
        reason: str = "",
        expect_canary: Any = None,
        then: Callable[[Connection], None] | None = None,
    ) -> bool:
        """Apply ``update`` as one revision; False when ``expect_canary`` is gone.

        ``then`` runs last in the same transaction (an error there undoes the revision).
        """
        with self.db.write() as conn:
            pid = self._project_id(conn)
            row = self._row(conn, name, lock=True)
            current = _from_row(row)
            if expect_canary is not None and (
                current.canary is None or current.canary.get("version") != expect_canary
            ):
                return False  # another process promoted or rolled it back already
            changed: Deployment = update(current)
            revision = row.revision + 1
            state = changed.state()
            conn.execute(
                sa.update(deployments)
                .where(deployments.c.id == row.id)
                .values(state=orjson.dumps(state).decode(), revision=revision, updated_at=_now())
            )
            self._record(conn, pid, row.id, name, revision, action, reason, state)
            if then is not None:
                then(conn)
        return True

    def _record(
        self,
        conn: Connection,
        pid: int,
        deployment_id: int,
        name: str,
        revision: int,
        action: str,
        reason: str,
        state: dict[str, Any],
    ) -> None:
        conn.execute(
            sa.insert(deployment_history).values(
                deployment_id=deployment_id,
                revision=revision,
                action=action,
                actor=self.actor,
                reason=reason,
                state=orjson.dumps(state).decode(),
                created_at=_now(),
            )
        )
        payload = {"revision": revision, "action": action, "reason": reason, "state": state}
        emit(conn, f"deployment.{action}", "deployment", name, self.actor, payload, pid)

    # -- lookups -------------------------------------------------------------------------
    def _project_id(self, conn: Connection) -> int:
        found = conn.execute(
            sa.select(projects.c.id).where(projects.c.name == self.project)
        ).scalar()
        if found is None:
            raise NotFoundError(f"project {self.project!r} does not exist")
        return int(found)

    def _row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = sa.select(deployments).where(
            deployments.c.project_id == self._project_id(conn), deployments.c.name == name
        )
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(
                f"deployment {name!r} does not exist",
                hint="list deployments with `loopline deploy list`",
            )
        return row

    def _target(self, model_uri: str) -> tuple[str, str | None, int | None]:
        parsed = parse_model_uri(model_uri)
        if parsed.kind != "registered" or parsed.ref is None:
            raise InvalidArgumentError(
                f"a deployment serves a registered model, not {model_uri!r}",
                hint="use models:/NAME@ALIAS (followed) or models:/NAME/VERSION",
            )
        version = self.registry.resolve(model_uri)  # exists now
        if parsed.ref.kind == "alias":
            return version.name, parsed.ref.value, None
        return version.name, None, version.version

    def _pinned(self, model_uri: str) -> tuple[str, int]:
        if not model_uri.startswith("models:/"):
            raise InvalidArgumentError(
                f"canaries and shadows are registered versions, not {model_uri!r}",
                hint="use models:/NAME@ALIAS or models:/NAME/VERSION",
            )
        version = self.registry.resolve(model_uri)
        return version.name, version.version


_LIMITS = {"max_error_rate": (0.0, 1.0), "max_p99_ms": (0.0, None)}
_LIMITS |= {"window_seconds": (0.0, None), "min_requests": (0.0, None)}
_LIMITS |= {"promote_after_requests": (0.0, None), "promote_after_seconds": (0.0, None)}
_COUNTS = {"min_requests", "promote_after_requests"}


def _check_limits(limits: dict[str, Any]) -> dict[str, Any]:
    """The limits (and promotion rule) checked, counts as ``int``: what is stored.

    >>> _check_limits({"promote_after_requests": 30.0, "max_p99_ms": 250})
    {'promote_after_requests': 30, 'max_p99_ms': 250}
    """
    checked: dict[str, Any] = {}
    for key, value in limits.items():
        if key not in _LIMITS:
            raise InvalidArgumentError(
                f"unknown limit {key!r}", hint=f"limits are {', '.join(sorted(_LIMITS))}"
            )
        low, high = _LIMITS[key]
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or value != value  # NaN compares false both ways and would pass the bounds
            or value < low
            or (high is not None and value > high)
        ):
            wanted = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
            raise InvalidArgumentError(f"limit {key} must be a number {wanted}, got {value!r}")
        if key in _COUNTS:
            if value != int(value):
                raise InvalidArgumentError(
                    f"limit {key} counts requests: a whole number, got {value!r}"
                )
            value = int(value)
        checked[key] = value
    return checked


def _check_rule(limits: dict[str, Any]) -> None:
    """A promotion rule must let the limits judge the canary first."""
    from loopline.serving.endpoint import Limits

    rule = Limits.from_dict(limits)
    if 0 < rule.promote_after_requests < rule.min_requests:
        raise InvalidArgumentError(
            f"promote_after_requests ({rule.promote_after_requests}) is below min_requests "
            f"({rule.min_requests}): the canary would be promoted before its limits judge it",
            hint="raise --promote-after-requests, or lower --min-requests",
        )


def describe_limits(limits: dict[str, Any]) -> str:
    """Limits as ``key=value`` text, in key order.

    >>> describe_limits({"min_requests": 30, "max_p99_ms": 250.0})
    'max_p99_ms=250, min_requests=30'
    """
    return ", ".join(f"{k}={v:g}" for k, v in sorted(limits.items()))


def _with(deployment: Deployment, **changes: Any) -> Deployment:
    for key, value in changes.items():
        setattr(deployment, key, value)
    return deployment


def _from_row(row: Any) -> Deployment:
    return Deployment.from_dict(
        {
            **orjson.loads(row.state),
            "name": row.name,
            "revision": row.revision,
            "created_at": row.created_at,
            "created_by": row.created_by,
            "updated_at": row.updated_at,
        }
    )


def open_deployment_api(settings: Any = None) -> DeploymentApi:
    """Deployments through the server an ``http(s)://`` tracking URI names, else the store."""
    from loopline.config import get_settings

    settings = settings or get_settings()
    if settings.remote:
        from loopline.serving.http import DeploymentHttpClient

        return DeploymentHttpClient(
            settings.tracking_uri,
            token=settings.token,
            user=settings.user,
            project=settings.project,
        )
    return open_deployments(settings)


def open_deployments(settings: Any = None) -> DeploymentService:
    """The deployment service over the store the settings name (never over HTTP)."""
    from loopline.client.factory import open_service
    from loopline.config import get_settings
    from loopline.registry.service import RegistryService

    settings = settings or get_settings()
    if settings.remote:
        raise InvalidArgumentError(
            "a deployment's endpoint runs on the store itself, not through a tracking server",
            hint="point LOOPLINE_TRACKING_URI (or --tracking-uri) at the server's database URL",
        )
    tracking = open_service(settings)
    registry = RegistryService(
        tracking.db, tracking.blobs, user=settings.user, project=settings.project
    )
    return DeploymentService(tracking.db, registry, actor=settings.user, project=settings.project)
