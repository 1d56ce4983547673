"""SQL for datasets, versions, tags and lineage, in SQLAlchemy Core (SQLite and PostgreSQL).

:class:`DataStore` owns every statement on the ``datasets``, ``dataset_versions``,
``dataset_tags``, ``dataset_tag_history`` and ``lineage`` tables. The two hot
statements of ``add`` and ``status`` (the latest version of a dataset, recording
a new one) also exist as static SQL over the stdlib ``sqlite3`` module in
:mod:`loopline.data._sqlite`, so the CLI's fast path never imports SQLAlchemy; a
contract test checks both write the same rows.

Version numbers are dense per dataset. Two processes recording a version of the
same dataset at once get consecutive numbers: SQLite serialises write
transactions (``BEGIN IMMEDIATE``), PostgreSQL locks the dataset row, and a
unique-constraint race (two creators of a new dataset) is retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from loopline.data.rows import (
    EVENT_TAG_MOVED,
    EVENT_VERSION_ADDED,
    LINEAGE_TYPE,
    NewVersion,
    VersionRow,
    now_ms,
)
from loopline.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
    StoreError,
)
from loopline.events import emit
from loopline.store.metadata.schema import (
    dataset_tag_history,
    dataset_tags,
    dataset_versions,
    datasets,
    lineage,
    model_versions,
    projects,
    registered_models,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy.engine import Connection

    from loopline.data.refs import Ref
    from loopline.store.metadata import Database

__all__ = ["DataStore", "DatasetRow", "LineageEdge", "TagMove"]

T = TypeVar("T")
_RETRIES = 5
_V = dataset_versions.c
_VERSION_SELECT = sa.select(
    _V.id,
    _V.dataset_id,
    datasets.c.name,
    _V.version,
    _V.digest,
    _V.kind,
    _V.file_count,
    _V.total_size,
    _V.message,
    _V.source,
    _V.schema_json,
    _V.profile_digest,
    _V.created_at,
    _V.created_by,
).join(datasets, datasets.c.id == _V.dataset_id)


@dataclass(frozen=True, slots=True)
class DatasetRow:
    """A dataset with a summary of its versions."""

    name: str
    versions: int
    latest: int | None
    total_size: int | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class TagMove:
    """A tag set or moved: the version numbers it pointed at before (None: new) and after."""

    name: str
    tag: str
    from_version: int | None
    to_version: int


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """One edge of the lineage graph."""

    src_type: str
    src_id: str
    dst_type: str
    dst_id: str
    relation: str
    context: str
    created_at: int


def _row(r: Any) -> VersionRow:
    return VersionRow(*r)


class DataStore:
    """Datasets, versions, tags and lineage edges over a :class:`~loopline.store.metadata.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- helpers -------------------------------------------------------------------------
    def _retry(self, fn: Callable[[Connection], T]) -> T:
        """Run a write transaction, again when a concurrent writer won a uniqueness race."""
        for attempt in range(_RETRIES):
            try:
                with self.db.write() as conn:
                    return fn(conn)
            except (sa.exc.IntegrityError, AlreadyExistsError):
                if attempt == _RETRIES - 1:
                    raise StoreError("a concurrent writer kept winning; try again") from None
        raise AssertionError("unreachable")

    @staticmethod
    def _project_id(conn: Connection, project: str) -> int:
        pid = conn.execute(sa.select(projects.c.id).where(projects.c.name == project)).scalar()
        if pid is None:
            raise NotFoundError(
                f"project {project!r} does not exist",
                hint="the 'default' project always exists; set LOOPLINE_PROJECT to it",
            )
        return int(pid)

    @classmethod
    def _dataset_id(cls, conn: Connection, project: str, name: str, *, lock: bool = False) -> int:
        query = sa.select(datasets.c.id).where(
            datasets.c.project_id == cls._project_id(conn, project),
            datasets.c.name == name,
            datasets.c.deleted_at.is_(None),
        )
        if lock:
            query = query.with_for_update()
        found = conn.execute(query).scalar()
        if found is None:
            raise NotFoundError(
                f"dataset {name!r} does not exist",
                hint="list datasets with `loopline data list`; add one with `loopline data add`",
            )
        return int(found)

    @staticmethod
    def _latest(conn: Connection, dataset_id: int) -> VersionRow | None:
        row = conn.execute(
            _VERSION_SELECT.where(_V.dataset_id == dataset_id, _V.deleted_at.is_(None))
            .order_by(_V.version.desc())
            .limit(1)
        ).first()
        return None if row is None else _row(row)

    # -- versions --------------------------------------------------------------------------
    def latest(self, project: str, name: str) -> VersionRow | None:
        """The newest version of a dataset, or None when the dataset has none (or is unknown)."""
        with self.db.read() as conn:
            try:
                dataset_id = self._dataset_id(conn, project, name)
            except NotFoundError:
                return None
            return self._latest(conn, dataset_id)

    def record(self, new: NewVersion) -> tuple[VersionRow, bool]:
        """Record ``new`` unless the latest version has its digest; (the version, created)."""
        return self._retry(lambda conn: self._record(conn, new))

    def _record(self, conn: Connection, new: NewVersion) -> tuple[VersionRow, bool]:
        now = now_ms()
        pid = self._project_id(conn, new.project)
        dataset_id = _dataset_for_update(conn, pid, new.name, now)
        latest = self._latest(conn, dataset_id)
        if latest is not None and latest.digest == new.digest:
            for tag in new.tags:
                self._move_tag(conn, pid, latest, tag, new.user, now)
            return latest, False
        number = (
            conn.execute(
                sa.select(sa.func.max(_V.version)).where(_V.dataset_id == dataset_id)
            ).scalar()
            or 0
        ) + 1
        version_id = _insert_version(conn, dataset_id, number, new, now)
        row = new.row(version_id, dataset_id, number, now)
        emit(
            conn,
            EVENT_VERSION_ADDED,
            LINEAGE_TYPE,
            str(version_id),
            new.user,
            new.event_payload(number),
            project_id=pid,
        )
        for tag in new.tags:
            self._move_tag(conn, pid, row, tag, new.user, now)
        return row, True

    def import_version(self, new: NewVersion, number: int) -> tuple[VersionRow, bool]:
        """Record ``new`` as version ``number`` (a pull from a remote); (the version, created).

        The number is kept so that ``NAME@3`` means the same content everywhere; versions
        pulled out of order leave gaps, and later adds continue after the highest number.
        A version with that number and the same digest is kept as it is.
        """
        return self._retry(lambda conn: self._import(conn, new, number))

    def _import(self, conn: Connection, new: NewVersion, number: int) -> tuple[VersionRow, bool]:
        now = now_ms()
        pid = self._project_id(conn, new.project)
        dataset_id = _dataset_for_update(conn, pid, new.name, now)
        found = conn.execute(
            _VERSION_SELECT.where(_V.dataset_id == dataset_id, _V.version == number)
        ).first()
        if found is not None:
            row = _row(found)
            if row.digest != new.digest:
                raise InvalidStateError(
                    f"{new.name}@{number} exists here with another content "
                    f"({row.digest}, the remote has {new.digest})",
                    hint="the stores diverged: push or pull under another dataset name",
                )
            return row, False
        version_id = _insert_version(conn, dataset_id, number, new, now)
        emit(
            conn,
            EVENT_VERSION_ADDED,
            LINEAGE_TYPE,
            str(version_id),
            new.user,
            new.event_payload(number, pulled=True),
            project_id=pid,
        )
        row = _row(conn.execute(_VERSION_SELECT.where(_V.id == version_id)).one())
        return row, True

    def resolve(self, project: str, ref: Ref) -> VersionRow:
        """The version a reference names."""
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, project, ref.name)
            return self._resolve(conn, dataset_id, ref)

    def _resolve(self, conn: Connection, dataset_id: int, ref: Ref) -> VersionRow:
        live = _VERSION_SELECT.where(_V.dataset_id == dataset_id, _V.deleted_at.is_(None))
        if ref.kind == "latest":
            found = self._latest(conn, dataset_id)
            if found is None:
                raise NotFoundError(f"dataset {ref.name!r} has no versions")
            return found
        if ref.kind == "version":
            row = conn.execute(live.where(_V.version == ref.version)).first()
            if row is None:
                raise NotFoundError(
                    f"{ref} does not exist",
                    hint=f"list versions with `loopline data versions {ref.name}`",
                )
            return _row(row)
        if ref.kind == "tag":
            row = conn.execute(
                live.join(dataset_tags, dataset_tags.c.version_id == _V.id).where(
                    dataset_tags.c.dataset_id == dataset_id, dataset_tags.c.tag == ref.value
                )
            ).first()
            if row is None:
                raise NotFoundError(
                    f"dataset {ref.name!r} has no tag {ref.value!r}",
                    hint=f"list versions and their tags with `loopline data versions {ref.name}`",
                )
            return _row(row)
        rows = conn.execute(
            live.where(_V.digest.startswith(f"blake3:{ref.value}", autoescape=True)).order_by(
                _V.version.desc()
            )
        ).all()
        if not rows:
            raise NotFoundError(f"no version of {ref.name!r} has a digest starting {ref.value!r}")
        if len({r.digest for r in rows}) > 1:
            raise InvalidArgumentError(
                f"{ref} is ambiguous: versions {', '.join(str(r.version) for r in rows)} match",
                hint="give more characters of the digest",
            )
        return _row(rows[0])

    def versions(self, project: str, name: str) -> list[VersionRow]:
        """Every live version of a dataset, oldest first."""
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, project, name)
            rows = conn.execute(
                _VERSION_SELECT.where(
                    _V.dataset_id == dataset_id, _V.deleted_at.is_(None)
                ).order_by(_V.version)
            ).all()
        return [_row(r) for r in rows]

    def by_ids(self, ids: Sequence[int]) -> list[VersionRow]:
        if not ids:
            return []
        with self.db.read() as conn:
            rows = conn.execute(_VERSION_SELECT.where(_V.id.in_(list(ids)))).all()
        return [_row(r) for r in rows]

    def live_versions(self) -> list[VersionRow]:
        """Every version not deleted, of every dataset in every project."""
        with self.db.read() as conn:
            rows = conn.execute(
                _VERSION_SELECT.where(_V.deleted_at.is_(None)).order_by(_V.id)
            ).all()
        return [_row(r) for r in rows]

    def datasets(self, project: str) -> list[DatasetRow]:
        """The project's datasets with their version count and latest version."""
        stats = (
            sa.select(
                _V.dataset_id,
                sa.func.count().label("n"),
                sa.func.max(_V.version).label("latest"),
            )
            .where(_V.deleted_at.is_(None))
            .group_by(_V.dataset_id)
            .subquery()
        )
        with self.db.read() as conn:
            pid = self._project_id(conn, project)
            rows = conn.execute(
                sa.select(
                    datasets.c.name,
                    stats.c.n,
                    stats.c.latest,
                    _V.total_size,
                    datasets.c.created_at,
                    datasets.c.updated_at,
                )
                .select_from(datasets)
                .outerjoin(stats, stats.c.dataset_id == datasets.c.id)
                .outerjoin(
                    dataset_versions,
                    sa.and_(_V.dataset_id == datasets.c.id, _V.version == stats.c.latest),
                )
                .where(datasets.c.project_id == pid, datasets.c.deleted_at.is_(None))
                .order_by(datasets.c.name)
            ).all()
        return [DatasetRow(r[0], r[1] or 0, r[2], r[3], r[4], r[5]) for r in rows]

    # -- tags ------------------------------------------------------------------------------
    def tags_for(self, version_ids: Sequence[int]) -> dict[int, list[str]]:
        """Tags pointing at each of ``version_ids``, sorted."""
        found: dict[int, list[str]] = {}
        if not version_ids:
            return found
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(dataset_tags.c.version_id, dataset_tags.c.tag)
                .where(dataset_tags.c.version_id.in_(list(version_ids)))
                .order_by(dataset_tags.c.tag)
            ).all()
        for version_id, tag in rows:
            found.setdefault(version_id, []).append(tag)
        return found

    def move_tag(self, project: str, ref: Ref, tag: str, actor: str) -> TagMove:
        """Point ``tag`` at the version ``ref`` names (creating or moving it)."""

        def run(conn: Connection) -> TagMove:
            pid = self._project_id(conn, project)
            dataset_id = self._dataset_id(conn, project, ref.name, lock=True)
            row = self._resolve(conn, dataset_id, ref)
            return self._move_tag(conn, pid, row, tag, actor, now_ms())

        return self._retry(run)

    @staticmethod
    def _move_tag(
        conn: Connection, pid: int, row: VersionRow, tag: str, actor: str, now: int
    ) -> TagMove:
        current = conn.execute(
            sa.select(dataset_tags.c.version_id, _V.version)
            .join(dataset_versions, _V.id == dataset_tags.c.version_id)
            .where(dataset_tags.c.dataset_id == row.dataset_id, dataset_tags.c.tag == tag)
        ).first()
        move = TagMove(row.name, tag, None if current is None else current[1], row.version)
        if current is not None and current[0] == row.id:
            return move
        if current is None:
            conn.execute(
                sa.insert(dataset_tags).values(
                    dataset_id=row.dataset_id,
                    tag=tag,
                    version_id=row.id,
                    updated_at=now,
                    updated_by=actor,
                )
            )
        else:
            conn.execute(
                sa.update(dataset_tags)
                .where(dataset_tags.c.dataset_id == row.dataset_id, dataset_tags.c.tag == tag)
                .values(version_id=row.id, updated_at=now, updated_by=actor)
            )
        conn.execute(
            sa.insert(dataset_tag_history).values(
                dataset_id=row.dataset_id,
                tag=tag,
                from_version_id=None if current is None else current[0],
                to_version_id=row.id,
                actor=actor,
                created_at=now,
            )
        )
        emit(
            conn,
            EVENT_TAG_MOVED,
            LINEAGE_TYPE,
            str(row.id),
            actor,
            {
                "dataset": row.name,
                "tag": tag,
                "from_version": move.from_version,
                "to_version": row.version,
            },
            project_id=pid,
        )
        return move

    def tag_history(self, project: str, name: str) -> list[tuple[str, int | None, int, str, int]]:
        """Every tag move of a dataset, oldest first: (tag, from, to, actor, time)."""
        old = dataset_versions.alias("old")
        new = dataset_versions.alias("new")
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, project, name)
            rows = conn.execute(
                sa.select(
                    dataset_tag_history.c.tag,
                    old.c.version,
                    new.c.version,
                    dataset_tag_history.c.actor,
                    dataset_tag_history.c.created_at,
                )
                .select_from(dataset_tag_history)
                .outerjoin(old, old.c.id == dataset_tag_history.c.from_version_id)
                .join(new, new.c.id == dataset_tag_history.c.to_version_id)
                .where(dataset_tag_history.c.dataset_id == dataset_id)
                .order_by(dataset_tag_history.c.id)
            ).all()
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    # -- lineage -----------------------------------------------------------------------------
    def add_edge(
        self,
        src: tuple[str, str],
        dst: tuple[str, str],
        relation: str,
        context: str = "",
    ) -> bool:
        """Record an edge once; False when it was there already (its empty context is then set)."""
        values = {
            "src_type": src[0],
            "src_id": src[1],
            "dst_type": dst[0],
            "dst_id": dst[1],
            "relation": relation,
        }
        with self.db.write() as conn:
            exists = conn.execute(
                sa.select(lineage.c.id, lineage.c.context).where(
                    *(lineage.c[k] == v for k, v in values.items())
                )
            ).first()
            if exists is not None:
                if context and not exists.context:  # an explicit context refines an implicit edge
                    conn.execute(
                        sa.update(lineage).where(lineage.c.id == exists.id).values(context=context)
                    )
                return False
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.insert(lineage).values(**values, context=context, created_at=now_ms())
                    )
            except sa.exc.IntegrityError:
                return False  # a concurrent writer recorded it
        return True

    def edges(
        self,
        *,
        src: tuple[str, str] | None = None,
        dst: tuple[str, str] | None = None,
        relation: str | None = None,
    ) -> list[LineageEdge]:
        clauses: list[Any] = []
        if src is not None:
            clauses += [lineage.c.src_type == src[0], lineage.c.src_id == src[1]]
        if dst is not None:
            clauses += [lineage.c.dst_type == dst[0], lineage.c.dst_id == dst[1]]
        if relation is not None:
            clauses.append(lineage.c.relation == relation)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    lineage.c.src_type,
                    lineage.c.src_id,
                    lineage.c.dst_type,
                    lineage.c.dst_id,
                    lineage.c.relation,
                    lineage.c.context,
                    lineage.c.created_at,
                )
                .where(*clauses)
                .order_by(lineage.c.id)
            ).all()
        return [LineageEdge(*r) for r in rows]

    def models_of_runs(self, run_ids: Sequence[str]) -> list[tuple[str, int, str]]:
        """Registered model versions created from any of ``run_ids``: (model, version, run)."""
        if not run_ids:
            return []
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    registered_models.c.name, model_versions.c.version, model_versions.c.run_id
                )
                .join(registered_models, registered_models.c.id == model_versions.c.model_id)
                .where(
                    model_versions.c.run_id.in_(list(run_ids)),
                    model_versions.c.deleted_at.is_(None),
                )
                .order_by(registered_models.c.name, model_versions.c.version)
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def model_versions_by_ids(self, ids: Sequence[str]) -> list[tuple[str, int, str | None]]:
        numeric = [int(i) for i in ids if i.isdigit()]
        if not numeric:
            return []
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    registered_models.c.name, model_versions.c.version, model_versions.c.run_id
                )
                .join(registered_models, registered_models.c.id == model_versions.c.model_id)
                .where(model_versions.c.id.in_(numeric))
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]


def _dataset_for_update(conn: Connection, pid: int, name: str, now: int) -> int:
    """The dataset's id, locked for this transaction (created when new)."""
    found = conn.execute(
        sa.select(datasets.c.id)
        .where(datasets.c.project_id == pid, datasets.c.name == name)
        .with_for_update()
    ).scalar()
    if found is not None:
        return int(found)
    return int(
        conn.execute(
            sa.insert(datasets)
            .values(project_id=pid, name=name, created_at=now, updated_at=now)
            .returning(datasets.c.id)
        ).scalar_one()
    )


def _insert_version(
    conn: Connection, dataset_id: int, number: int, new: NewVersion, now: int
) -> int:
    """Insert version ``number`` of a dataset (added here or pulled); returns its row id."""
    version_id: int = conn.execute(
        sa.insert(dataset_versions)
        .values(
            dataset_id=dataset_id,
            version=number,
            digest=new.digest,
            kind=new.kind,
            file_count=new.file_count,
            total_size=new.total_size,
            message=new.message,
            source=new.source,
            schema_json=new.schema_json,
            profile_digest=new.profile_digest,
            created_at=now,
            created_by=new.user,
        )
        .returning(_V.id)
    ).scalar_one()
    conn.execute(sa.update(datasets).where(datasets.c.id == dataset_id).values(updated_at=now))
    return version_id
