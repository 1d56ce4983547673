"""Monitors, runs, results and alerts in the metadata database (SQLAlchemy Core)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from loopline.errors import AlreadyExistsError, NotFoundError
from loopline.events import emit
from loopline.store.metadata.schema import projects
from loopline.store.metadata.schema_monitoring import (
    monitor_alerts,
    monitor_profiles,
    monitor_results,
    monitor_runs,
    monitors,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopline.store.metadata import Database

__all__ = ["MonitorStore"]


def _now() -> int:
    return int(time.time() * 1000)


def _row(row: Any) -> dict[str, Any]:
    # Plain str keys: SQLAlchemy's keys may be str subclasses that orjson refuses.
    return {str(k): v for k, v in row._mapping.items()}


def _monitor(row: Any) -> dict[str, Any]:
    d = _row(row)
    d["config"] = orjson.loads(d.pop("config_json") or "{}")
    return d


class MonitorStore:
    """Reads and writes of the monitoring tables for one project."""

    def __init__(self, db: Database, *, user: str = "unknown", project: str = "default") -> None:
        self.db = db
        self.user = user
        self.project = project
        self._project_id: int | None = None

    @property
    def project_id(self) -> int:
        if self._project_id is None:
            with self.db.read() as conn:
                found = conn.execute(
                    sa.select(projects.c.id).where(projects.c.name == self.project)
                ).scalar()
            self._project_id = int(found) if found is not None else 1
        return self._project_id

    # -- monitors ------------------------------------------------------------------------
    def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        row = {k: v for k, v in fields.items() if k != "config"}
        row.update(
            project_id=self.project_id,
            config_json=orjson.dumps(fields.get("config") or {}).decode(),
            created_by=self.user,
            created_at=now,
            updated_at=now,
        )
        with self.db.write() as conn:
            exists = conn.execute(
                sa.select(monitors.c.id).where(
                    monitors.c.project_id == self.project_id, monitors.c.name == row["name"]
                )
            ).first()
            if exists is not None:
                raise AlreadyExistsError(
                    f"monitor {row['name']!r} already exists",
                    hint="pick another name, or delete it with `loopline monitor delete`",
                )
            conn.execute(sa.insert(monitors).values(row))
            emit(conn, "monitor.created", "monitor", row["name"], self.user,
                 {"monitor": row["name"], "deployment": row["deployment"]}, self.project_id)  # fmt: skip
        return self.get(row["name"])

    def get(self, name: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(monitors).where(
                    monitors.c.project_id == self.project_id, monitors.c.name == name
                )
            ).first()
        if row is None:
            raise NotFoundError(
                f"monitor {name!r} does not exist",
                hint="list monitors with `loopline monitor list`",
            )
        return _monitor(row)

    def list_all(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(monitors)
                .where(monitors.c.project_id == self.project_id)
                .order_by(monitors.c.name)
            ).all()
        return [_monitor(r) for r in rows]

    def all_scheduled(self) -> list[dict[str, Any]]:
        """Scheduled monitors of every project (the scheduler runs them all)."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(monitors).where(monitors.c.schedule.is_not(None))).all()
        return [_monitor(r) for r in rows]

    def delete(self, name: str) -> None:
        monitor = self.get(name)
        with self.db.write() as conn:
            mid = monitor["id"]
            run_ids = sa.select(monitor_runs.c.id).where(monitor_runs.c.monitor_id == mid)
            conn.execute(sa.delete(monitor_results).where(monitor_results.c.run_id.in_(run_ids)))
            conn.execute(sa.delete(monitor_alerts).where(monitor_alerts.c.monitor_id == mid))
            conn.execute(sa.delete(monitor_runs).where(monitor_runs.c.monitor_id == mid))
            conn.execute(sa.delete(monitors).where(monitors.c.id == mid))
            emit(conn, "monitor.deleted", "monitor", name, self.user, {"monitor": name},
                 self.project_id)  # fmt: skip

    # -- runs, results, alerts ---------------------------------------------------------------
    def record_run(
        self,
        monitor: dict[str, Any],
        run: dict[str, Any],
        results: list[dict[str, Any]],
        alerts: list[dict[str, Any]],
    ) -> tuple[int, list[dict[str, Any]]]:
        """Store a run, its results and its alerts (each with its event) in one transaction."""
        now = _now()
        stored: list[dict[str, Any]] = []
        with self.db.write() as conn:
            run_id = int(
                conn.execute(
                    sa.insert(monitor_runs)
                    .values(monitor_id=monitor["id"], **run)
                    .returning(monitor_runs.c.id)
                ).scalar_one()
            )
            if results:
                conn.execute(
                    sa.insert(monitor_results),
                    [{**r, "run_id": run_id, "monitor_id": monitor["id"], "created_at": now}
                     for r in results],
                )  # fmt: skip
            # One event per run, for its worst alert: a trigger retrains once per run,
            # however many checks failed. Every alert is stored and sent to webhooks.
            ranked = sorted(alerts, key=lambda a: a["severity"] != "critical")
            for i, alert in enumerate(ranked):
                stored.append(self._alert(conn, monitor, run_id, alert, now, event=i == 0))
            conn.execute(
                sa.update(monitors).where(monitors.c.id == monitor["id"]).values(last_run_at=now)
            )
        return run_id, stored

    def _alert(
        self,
        conn: Connection,
        monitor: dict[str, Any],
        run_id: int,
        alert: dict[str, Any],
        now: int,
        *,
        event: bool = True,
    ) -> dict[str, Any]:
        row = {
            "monitor_id": monitor["id"],
            "run_id": run_id,
            "severity": alert["severity"],
            "kind": alert["kind"],
            "message": alert["message"],
            "dataset": alert.get("dataset"),
            "delivery": "pending" if monitor.get("webhook") else "none",
            "created_at": now,
        }
        alert_id = int(
            conn.execute(sa.insert(monitor_alerts).values(row).returning(monitor_alerts.c.id))
            .scalar_one()
        )  # fmt: skip
        payload = {
            "monitor": monitor["name"],
            "alert_id": alert_id,
            "run_id": run_id,
            "severity": row["severity"],
            "kind": row["kind"],
            "message": row["message"],
        }
        if row["dataset"]:
            payload["dataset"] = row["dataset"]
        if event:
            emit(conn, "monitor.alert", "monitor", monitor["name"], self.user, payload,
                 monitor["project_id"])  # fmt: skip
        return {**row, "id": alert_id, "payload": payload}

    def set_delivery(self, alert_id: int, ok: bool, attempts: int, error: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                sa.update(monitor_alerts)
                .where(monitor_alerts.c.id == alert_id)
                .values(
                    delivery="delivered" if ok else "failed",
                    attempts=attempts,
                    last_error=error,
                    delivered_at=_now() if ok else None,
                )
            )

    def runs(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """A monitor's runs with their summaries, newest first."""
        return self._runs(self.get(name)["id"], limit)

    def run(self, name: str, run_id: int) -> dict[str, Any]:
        """One run of a monitor, with its summary."""
        found = self._runs(self.get(name)["id"], 1, run_id=run_id)
        if not found:
            raise NotFoundError(
                f"monitor {name!r} has no run {run_id}",
                hint=f"list its runs with `loopline monitor show {name}`",
            )
        return found[0]

    def _runs(
        self, monitor_id: int, limit: int, *, run_id: int | None = None
    ) -> list[dict[str, Any]]:
        query = sa.select(monitor_runs).where(monitor_runs.c.monitor_id == monitor_id)
        if run_id is not None:
            query = query.where(monitor_runs.c.id == run_id)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(monitor_runs.c.id.desc()).limit(limit)).all()
        out = []
        for r in rows:
            d = _row(r)
            d["summary"] = orjson.loads(d.pop("summary_json"))
            out.append(d)
        return out

    def recent_row_counts(self, monitor_id: int, limit: int) -> list[int]:
        """Row counts of a monitor's latest runs (newest first)."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(monitor_runs.c.rows)
                .where(monitor_runs.c.monitor_id == monitor_id)
                .order_by(monitor_runs.c.id.desc())
                .limit(limit)
            ).all()
        return [int(r.rows) for r in rows]

    def runs_with_estimates(self, monitor_id: int, limit: int) -> list[dict[str, Any]]:
        """The latest runs (newest first, among the last ``limit``) that estimated quality."""
        return [
            r for r in self._runs(monitor_id, limit)
            if (r["summary"].get("estimate") or {}).get("estimated")
        ]  # fmt: skip

    def update_estimate(
        self, run_id: int, monitor_id: int, summary: dict[str, Any], rows: list[dict[str, Any]]
    ) -> None:
        """Store a past run's realised quality: its summary, and its performance results
        (replacing those of the same metrics, dated like the run's other results)."""
        metrics = [r["metric"] for r in rows]
        with self.db.write() as conn:
            stamp = conn.execute(
                sa.select(sa.func.min(monitor_results.c.created_at)).where(
                    monitor_results.c.run_id == run_id
                )
            ).scalar()
            conn.execute(
                sa.delete(monitor_results).where(
                    monitor_results.c.run_id == run_id,
                    monitor_results.c.category == "performance",
                    monitor_results.c.metric.in_(metrics),
                )
            )
            if rows:
                conn.execute(
                    sa.insert(monitor_results),
                    [{**r, "run_id": run_id, "monitor_id": monitor_id,
                      "created_at": stamp or _now()} for r in rows],
                )  # fmt: skip
            conn.execute(
                sa.update(monitor_runs)
                .where(monitor_runs.c.id == run_id)
                .values(summary_json=orjson.dumps(summary).decode())
            )

    def history(
        self,
        name: str,
        *,
        column: str | None = None,
        category: str | None = None,
        metric: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Results over time (oldest first), optionally of one column, category or metric."""
        monitor = self.get(name)
        clauses: list[Any] = [monitor_results.c.monitor_id == monitor["id"]]
        if column is not None:
            clauses.append(monitor_results.c.column_name == column)
        if category is not None:
            clauses.append(monitor_results.c.category == category)
        if metric is not None:
            clauses.append(monitor_results.c.metric == metric)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(monitor_results)
                .where(*clauses)
                .order_by(monitor_results.c.id.desc())
                .limit(limit)
            ).all()
        return [_row(r) for r in reversed(rows)]

    def alerts(self, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = (
            sa.select(monitor_alerts, monitors.c.name.label("monitor"))
            .join(monitors, monitors.c.id == monitor_alerts.c.monitor_id)
            .where(monitors.c.project_id == self.project_id)
        )
        if name is not None:
            query = query.where(monitors.c.id == self.get(name)["id"])
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(monitor_alerts.c.id.desc()).limit(limit)).all()
        return [_row(r) for r in rows]

    # -- cached reference profiles -------------------------------------------------------------
    def cached_profile(self, key: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            text = conn.execute(
                sa.select(monitor_profiles.c.profile_json).where(monitor_profiles.c.key == key)
            ).scalar()
        return None if text is None else dict(orjson.loads(text))

    def cache_profile(self, key: str, profile: dict[str, Any]) -> None:
        with self.db.write() as conn:
            if (
                conn.execute(
                    sa.select(monitor_profiles.c.key).where(monitor_profiles.c.key == key)
                ).first()
                is None
            ):
                conn.execute(
                    sa.insert(monitor_profiles).values(
                        key=key, profile_json=orjson.dumps(profile).decode(), created_at=_now()
                    )
                )
