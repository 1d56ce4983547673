"""Triggers and the scheduler: cron schedules, new dataset versions, monitoring alerts.

Exactly one scheduler acts at a time: each tick first takes or renews a lease (a
row of ``pipeline_scheduler``) and every write it makes checks, in the same
transaction, that it still holds it. New data and alerts come from the event log,
read from a cursor stored in that same row and advanced in the transaction that
records the firings, so a restart neither misses nor repeats an event. Each firing
starts ``loopline pipeline run`` in a process of its own, which records its outcome
on the firing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from loopline.errors import InvalidArgumentError, NotFoundError
from loopline.pipelines.store import HOST, now_ms
from loopline.store.metadata.schema import events, projects
from loopline.store.metadata.schema_pipelines import (
    pipeline_firings,
    pipeline_scheduler,
    pipeline_triggers,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopline.config import Settings
    from loopline.store.metadata import Database

__all__ = [
    "KINDS",
    "Scheduler",
    "create_trigger",
    "delete_trigger",
    "list_firings",
    "list_triggers",
    "next_cron",
    "start_in_background",
]

KINDS = ("cron", "new_data", "alert")
_EVENT_KINDS = {"new_data": "dataset.version_added", "alert": "monitor.alert"}
LEASE_NAME = "scheduler"


def next_cron(spec: str, after_ms: int) -> int:
    """The next time (ms) ``spec`` fires after ``after_ms``.

    >>> next_cron("0 3 * * *", 0)  # 03:00 UTC on 1 January 1970
    10800000
    """
    from croniter import croniter

    base = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
    return int(croniter(spec, base).get_next(datetime).timestamp() * 1000)


def _check_spec(kind: str, spec: str) -> None:
    if kind not in KINDS:
        raise InvalidArgumentError(f"unknown trigger kind {kind!r}", hint=f"one of {KINDS}")
    if kind == "cron":
        from croniter import croniter

        if not croniter.is_valid(spec):
            raise InvalidArgumentError(
                f"not a cron expression: {spec!r}", hint='e.g. "0 3 * * *" (03:00 every day)'
            )
    elif not spec.strip():
        raise InvalidArgumentError(f"a {kind} trigger needs a name to watch")


def create_trigger(
    db: Database,
    *,
    target: str,
    pipeline: str,
    kind: str,
    spec: str,
    params: dict[str, str] | None = None,
    executor: str = "local",
    data_param: str = "dataset",
    workdir: str = "",
    project: str = "default",
    user: str = "",
) -> int:
    """Record a trigger; its id."""
    _check_spec(kind, spec)
    now = now_ms()
    with db.write() as conn:
        pid = conn.execute(sa.select(projects.c.id).where(projects.c.name == project)).scalar()
        if pid is None:
            raise NotFoundError(f"project {project!r} does not exist")
        return int(
            conn.execute(
                sa.insert(pipeline_triggers)
                .values(
                    project_id=pid,
                    target=target,
                    pipeline=pipeline,
                    kind=kind,
                    spec=spec,
                    params_json=orjson.dumps(params or {}).decode(),
                    executor=executor,
                    data_param=data_param,
                    workdir=workdir,
                    enabled=True,
                    next_fire_at=next_cron(spec, now) if kind == "cron" else None,
                    created_at=now,
                    created_by=user,
                )
                .returning(pipeline_triggers.c.id)
            ).scalar_one()
        )


def delete_trigger(db: Database, trigger_id: int) -> None:
    with db.write() as conn:
        conn.execute(sa.delete(pipeline_firings).where(pipeline_firings.c.trigger_id == trigger_id))
        gone = conn.execute(
            sa.delete(pipeline_triggers).where(pipeline_triggers.c.id == trigger_id)
        ).rowcount
    if not gone:
        raise NotFoundError(f"trigger {trigger_id} does not exist")


def list_triggers(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(pipeline_triggers).order_by(pipeline_triggers.c.id)).all()
    return [
        {
            "id": r.id,
            "target": r.target,
            "pipeline": r.pipeline,
            "kind": r.kind,
            "spec": r.spec,
            "params": orjson.loads(r.params_json),
            "executor": r.executor,
            "data_param": r.data_param,
            "enabled": bool(r.enabled),
            "next_fire_at": r.next_fire_at,
            "created_at": r.created_at,
            "created_by": r.created_by,
        }
        for r in rows
    ]


def list_firings(
    db: Database, trigger_id: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = sa.select(pipeline_firings).order_by(pipeline_firings.c.id.desc()).limit(limit)
    if trigger_id is not None:
        query = query.where(pipeline_firings.c.trigger_id == trigger_id)
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "id": r.id,
            "trigger_id": r.trigger_id,
            "event_id": r.event_id,
            "reason": r.reason,
            "params": orjson.loads(r.params_json),
            "status": r.status,
            "pipeline_run_id": r.pipeline_run_id,
            "message": r.message,
            "fired_at": r.fired_at,
            "updated_at": r.updated_at,
        }
        for r in rows
    ]


def record_outcome(
    db: Database, firing_id: int, *, status: str, run_id: str | None, message: str = ""
) -> None:
    """What the run started by a firing became (the run itself calls this)."""
    values: dict[str, Any] = {"status": status, "message": message[:10_000], "updated_at": now_ms()}
    if run_id:
        values["pipeline_run_id"] = run_id
    with db.write() as conn:
        conn.execute(
            sa.update(pipeline_firings).where(pipeline_firings.c.id == firing_id).values(**values)
        )


@dataclass(slots=True)
class TickReport:
    leader: bool
    fired: int = 0
    launched: int = 0
    monitors: int = 0


class LeaseLostError(Exception):
    """Another scheduler took the lease in the middle of a tick."""


class Scheduler:
    """One scheduler; call :meth:`tick` periodically (``loopline scheduler`` does)."""

    def __init__(
        self,
        settings: Settings,
        *,
        lease_seconds: float = 30.0,
        holder: str | None = None,
        launch: bool = True,
    ) -> None:
        from loopline.store.metadata import Database

        self.settings = settings
        self.db = Database(settings.metadata_url)
        self.lease_ms = int(lease_seconds * 1000)
        self.holder = holder or f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.launch = launch
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def close(self) -> None:
        self.db.close()

    # -- the lease -------------------------------------------------------------------
    def acquire(self) -> bool:
        """Take or renew the lease; False when another live scheduler holds it."""
        now = now_ms()
        with self.db.write() as conn:
            row = self._lease_row(conn)
            if row is None:
                if conn.dialect.name == "postgresql":
                    from sqlalchemy.dialects.postgresql import insert
                else:
                    from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
                created = conn.execute(
                    insert(pipeline_scheduler)
                    .values(
                        name=LEASE_NAME,
                        holder=self.holder,
                        expires_at=now + self.lease_ms,
                        cursor=0,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["name"])
                ).rowcount
                return bool(created)
            if row.holder != self.holder and row.expires_at > now:
                return False
            taken = conn.execute(
                sa.update(pipeline_scheduler)
                .where(
                    pipeline_scheduler.c.name == LEASE_NAME,
                    pipeline_scheduler.c.holder == row.holder,
                    pipeline_scheduler.c.expires_at == row.expires_at,
                )
                .values(holder=self.holder, expires_at=now + self.lease_ms, updated_at=now)
            ).rowcount
            return bool(taken)

    def release(self) -> None:
        with self.db.write() as conn:
            conn.execute(
                sa.update(pipeline_scheduler)
                .where(
                    pipeline_scheduler.c.name == LEASE_NAME,
                    pipeline_scheduler.c.holder == self.holder,
                )
                .values(expires_at=0, updated_at=now_ms())
            )

    def _lease_row(self, conn: Connection, *, lock: bool = False) -> Any:
        query = sa.select(pipeline_scheduler).where(pipeline_scheduler.c.name == LEASE_NAME)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return conn.execute(query).first()

    def _held(self, conn: Connection) -> Any:
        row = self._lease_row(conn, lock=True)
        if row is None or row.holder != self.holder or row.expires_at < now_ms():
            raise LeaseLostError
        return row

    # -- a tick ----------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> TickReport:
        """Fire what is due, if this scheduler holds the lease."""
        now = now or datetime.now(tz=UTC)
        if not self.acquire():
            return TickReport(leader=False)
        report = TickReport(leader=True)
        try:
            report.fired += self._consume_events()
            report.fired += self._fire_cron(int(now.timestamp() * 1000))
        except LeaseLostError:
            return TickReport(leader=False)
        report.monitors = self._monitors(now)
        if self.launch:
            report.launched = self._launch_pending()
        self._reap()
        return report

    def _monitors(self, now: datetime) -> int:
        try:
            from loopline.monitoring.schedule import run_due
        except ImportError:
            return 0
        try:
            return int(run_due(self.settings, now))
        except Exception as exc:
            print(f"scheduler: scheduled monitors failed: {exc}", file=sys.stderr)
            return 0

    def _triggers(self, conn: Connection, kind: str) -> list[Any]:
        return list(
            conn.execute(
                sa.select(pipeline_triggers).where(
                    pipeline_triggers.c.kind == kind, pipeline_triggers.c.enabled.is_(True)
                )
            ).all()
        )

    def _consume_events(self, batch: int = 1000) -> int:
        fired = 0
        while True:
            with self.db.write() as conn:
                cursor = int(self._held(conn).cursor)
                rows = conn.execute(
                    sa.select(events)
                    .where(events.c.id > cursor, events.c.kind.in_(list(_EVENT_KINDS.values())))
                    .order_by(events.c.id)
                    .limit(batch)
                ).all()
                if not rows:
                    return fired
                watchers = {k: self._triggers(conn, k) for k in _EVENT_KINDS}
                for event in rows:
                    fired += self._match(conn, event, watchers)
                conn.execute(
                    sa.update(pipeline_scheduler)
                    .where(pipeline_scheduler.c.name == LEASE_NAME)
                    .values(cursor=rows[-1].id, updated_at=now_ms())
                )
            if len(rows) < batch:
                return fired

    def _match(self, conn: Connection, event: Any, watchers: dict[str, list[Any]]) -> int:
        payload = orjson.loads(event.payload)
        fired = 0
        for kind, triggers in watchers.items():
            if event.kind != _EVENT_KINDS[kind]:
                continue
            for trigger in triggers:
                if event.created_at < trigger.created_at or event.project_id != trigger.project_id:
                    continue
                params = dict(orjson.loads(trigger.params_json))
                if kind == "new_data":
                    if payload.get("dataset") != trigger.spec:
                        continue
                    ref = f"{payload['dataset']}@{payload['version']}"
                    params[trigger.data_param] = ref
                    reason = f"new data {ref}"
                else:
                    if event.entity_id != trigger.spec and payload.get("monitor") != trigger.spec:
                        continue
                    if payload.get("dataset"):
                        params[trigger.data_param] = str(payload["dataset"])
                    reason = (
                        f"alert {payload.get('alert_id')} of monitor {trigger.spec} "
                        f"({payload.get('severity')}, {payload.get('kind')}): "
                        f"{payload.get('message', '')}"
                    )
                fired += self._insert_firing(conn, trigger.id, event.id, reason, params)
        return fired

    @staticmethod
    def _insert_firing(
        conn: Connection, trigger_id: int, event_id: int | None, reason: str, params: dict[str, Any]
    ) -> int:
        now = now_ms()
        if event_id is not None:
            seen = conn.execute(
                sa.select(pipeline_firings.c.id).where(
                    pipeline_firings.c.trigger_id == trigger_id,
                    pipeline_firings.c.event_id == event_id,
                )
            ).first()
            if seen is not None:
                return 0
        conn.execute(
            sa.insert(pipeline_firings).values(
                trigger_id=trigger_id,
                event_id=event_id,
                reason=reason[:10_000],
                params_json=orjson.dumps(params).decode(),
                status="pending",
                fired_at=now,
                updated_at=now,
            )
        )
        return 1

    def _fire_cron(self, now: int) -> int:
        fired = 0
        with self.db.write() as conn:
            self._held(conn)
            for trigger in self._triggers(conn, "cron"):
                if trigger.next_fire_at is None or trigger.next_fire_at > now:
                    continue
                # Missed slots (the scheduler was down) fire once, not once per slot.
                due = datetime.fromtimestamp(trigger.next_fire_at / 1000, tz=UTC)
                fired += self._insert_firing(
                    conn,
                    trigger.id,
                    None,
                    f"cron {trigger.spec} (due {due.isoformat(timespec='minutes')})",
                    dict(orjson.loads(trigger.params_json)),
                )
                conn.execute(
                    sa.update(pipeline_triggers)
                    .where(pipeline_triggers.c.id == trigger.id)
                    .values(next_fire_at=next_cron(trigger.spec, now))
                )
        return fired

    # -- running what fired ------------------------------------------------------------
    def _launch_pending(self) -> int:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(pipeline_firings, pipeline_triggers)
                .join(pipeline_triggers, pipeline_triggers.c.id == pipeline_firings.c.trigger_id)
                .where(pipeline_firings.c.status == "pending")
                .order_by(pipeline_firings.c.id)
            ).all()
        launched = 0
        for row in rows:
            with self.db.write() as conn:
                self._held(conn)
                claimed = conn.execute(
                    sa.update(pipeline_firings)
                    .where(pipeline_firings.c.id == row.id, pipeline_firings.c.status == "pending")
                    .values(status="running", updated_at=now_ms())
                ).rowcount
            if not claimed:
                continue
            self.processes[row.id] = self._start(row)
            launched += 1
        return launched

    def _start(self, row: Any) -> subprocess.Popen[bytes]:
        argv = [
            sys.executable,
            "-c",
            "from loopline.cli.main import main; main()",
            "pipeline",
            "run",
            row.target,
            "--executor",
            row.executor,
            "--firing",
            str(row.id),
        ]
        for key, value in orjson.loads(row.params_json).items():
            argv += ["--param", f"{key}={value}"]
        env = dict(os.environ)
        env["LOOPLINE_HOME"] = str(self.settings.home)
        if self.settings.tracking_uri:
            env["LOOPLINE_TRACKING_URI"] = self.settings.tracking_uri
        logs = self.settings.home / "scheduler-logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"firing-{row.id}.log", "ab") as log:
            return subprocess.Popen(
                argv,
                cwd=row.workdir or None,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _reap(self) -> None:
        for firing_id, proc in list(self.processes.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.processes[firing_id]
            if code not in (0, 3):
                # The run records its own outcome; this covers a run that could not start.
                with self.db.write() as conn:
                    conn.execute(
                        sa.update(pipeline_firings)
                        .where(
                            pipeline_firings.c.id == firing_id,
                            pipeline_firings.c.status == "running",
                        )
                        .values(
                            status="failed",
                            message=f"loopline pipeline run exited with {code}; see "
                            f"{self.settings.home / 'scheduler-logs'}/firing-{firing_id}.log",
                            updated_at=now_ms(),
                        )
                    )

    def wait(self, timeout: float = 600.0) -> None:
        """Wait for the runs this scheduler started (``--once`` does)."""
        deadline = time.monotonic() + timeout
        for proc in list(self.processes.values()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        self._reap()

    def serve(self, interval: float = 5.0, stop: Any = None) -> None:
        """Tick every ``interval`` seconds until ``stop`` (a threading.Event) is set."""
        try:
            while stop is None or not stop.is_set():
                started = time.monotonic()
                try:
                    self.tick()
                except Exception as exc:
                    print(f"scheduler: tick failed: {exc}", file=sys.stderr)
                pause = max(0.05, interval - (time.monotonic() - started))
                if stop is not None:
                    stop.wait(pause)
                else:
                    time.sleep(pause)
        finally:
            with contextlib.suppress(Exception):
                self.release()


def workdir_of(target: str) -> str:
    return str(Path.cwd()) if not Path(target.split(":")[0]).is_absolute() else ""


SERVER_TICK_SECONDS = 2.0
"""How often a scheduler inside ``loopline server`` ticks (a tick is a few queries)."""


def start_in_background(settings: Settings, interval: float = SERVER_TICK_SECONDS) -> Any:
    """Run a scheduler in a daemon thread of this process (``loopline server --scheduler``).

    Every server worker that calls this competes for the one lease, so only one
    fires triggers. At exit the thread stops and gives the lease up, so another
    server can take over at once. Returns the thread.
    """
    import atexit
    import threading

    stop = threading.Event()
    scheduler = Scheduler(settings)

    def loop() -> None:
        try:
            scheduler.serve(interval, stop=stop)
        finally:
            scheduler.close()

    thread = threading.Thread(target=loop, name="loopline-scheduler", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=5)

    atexit.register(halt)
    return thread
