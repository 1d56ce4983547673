"""Concurrent alias moves and version deletions, on SQLite and on PostgreSQL.

Threads (one process) and processes (one store shared by several) move an alias
between versions while others delete those versions. Whatever the interleaving:

* the alias never points at a deleted or missing version (checked continuously by
  a reader, and at the end);
* its history is one unbroken chain: each move starts where the previous one ended.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING

import sqlalchemy as sa

from loopline.errors import InvalidStateError, NotFoundError
from loopline.registry.service import RegistryService
from loopline.store.blobs.local import LocalBlobStore
from loopline.store.metadata.schema import model_aliases, model_versions
from loopline.tracking.entities import NewRun, RunWrites
from loopline.tracking.service import TrackingService
from loopline.tracking.store import now_ms

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.store.metadata import Database

VERSIONS = 12

_WORKER = r"""
import json, random, sys
from loopline.errors import InvalidStateError, NotFoundError
from loopline.registry.service import RegistryService
from loopline.store.blobs.local import LocalBlobStore
from loopline.store.metadata import Database

url, blobs, role = sys.argv[1], sys.argv[2], sys.argv[3]
seed, rounds, VERSIONS = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
reg = RegistryService(Database(url), LocalBlobStore(blobs), user=f"{role}-{seed}")
rng = random.Random(seed)
done = refused = 0
for i in range(rounds):
    version = rng.randint(1, VERSIONS)
    try:
        if role == "mover":
            reg.set_alias("m", "champion", version)
        else:
            reg.delete_model_version("m", version, force=rng.random() < 0.5)
        done += 1
    except (NotFoundError, InvalidStateError):
        refused += 1
print(json.dumps({"done": done, "refused": refused}))
"""


def _setup(db: Database, blobs: LocalBlobStore) -> RegistryService:
    tracking = TrackingService(db, blobs, user="ada")
    run_id = uuid.uuid4().hex
    tracking.write(
        RunWrites(uuid.uuid4().hex, new_runs=[NewRun(run_id, "0", "r", now_ms(), "ada")])
    )
    tracking.put_artifact(run_id, "model/weights.bin", b"w")
    reg = RegistryService(db, blobs, user="ada")
    for _ in range(VERSIONS):
        reg.register_model(f"runs:/{run_id}/model", "m")
    reg.set_alias("m", "champion", 1)
    return reg


def _alias_target(db: Database) -> tuple[int, int | None] | None:
    """(version number, deleted_at) the alias points at, read in one statement."""
    with db.read() as conn:
        row = conn.execute(
            sa.select(model_versions.c.version, model_versions.c.deleted_at)
            .select_from(model_aliases)
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id, isouter=True)
            .where(model_aliases.c.alias == "champion")
        ).first()
    if row is None:
        return None
    assert row.version is not None, "the alias points at a missing version"
    return int(row.version), row.deleted_at


def _check_final_state(reg: RegistryService) -> None:
    target = _alias_target(reg.db)
    if target is not None:
        assert target[1] is None, f"the alias points at deleted version {target[0]}"
        assert reg.resolve("m@champion").version == target[0]
    history = reg.alias_history("m", "champion")
    assert history, "no move recorded"
    previous: int | None = None
    for change in history:
        assert change.from_version == previous, f"broken chain at {change}"
        previous = change.to_version
    assert previous == (None if target is None else target[0])


class _Watcher(threading.Thread):
    """Reads the alias over and over; remembers any read that saw a deleted version."""

    def __init__(self, db: Database) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.reads = 0
        self.bad: list[tuple[int, int | None]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            target = _alias_target(self.db)
            self.reads += 1
            if target is not None and target[1] is not None:
                self.bad.append(target)


def test_threads_moving_and_deleting_never_leave_a_dangling_alias(
    db: Database, tmp_path: Path
) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    reg = _setup(db, blobs)
    watcher = _Watcher(db)
    watcher.start()
    errors: list[BaseException] = []

    def work(role: str, seed: int) -> None:
        rng = random.Random(seed)
        me = reg.for_user(f"{role}-{seed}")
        try:
            for _ in range(40):
                version = rng.randint(1, VERSIONS)
                try:
                    if role == "mover":
                        me.set_alias("m", "champion", version)
                    else:
                        me.delete_model_version("m", version, force=rng.random() < 0.5)
                except (NotFoundError, InvalidStateError):
                    pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=("mover", i)) for i in range(4)]
    threads.append(threading.Thread(target=work, args=("deleter", 99)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    watcher.stop.set()
    watcher.join(timeout=10)
    assert not errors, errors
    assert watcher.reads > 0
    assert not watcher.bad
    _check_final_state(reg)
    blobs.close()


def test_processes_moving_and_deleting_never_leave_a_dangling_alias(
    db: Database, metadata_url: str, tmp_path: Path
) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    reg = _setup(db, blobs)
    watcher = _Watcher(db)
    watcher.start()
    roles = [("mover", i) for i in range(3)] + [("deleter", 7)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                metadata_url,
                str(tmp_path / "blobs"),
                role,
                str(seed),
                "30",
                str(VERSIONS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role, seed in roles
    ]
    results = []
    deadline = time.monotonic() + 240
    for proc in procs:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    watcher.stop.set()
    watcher.join(timeout=10)
    assert sum(r["done"] for r in results) > 0
    assert not watcher.bad
    _check_final_state(reg)
    blobs.close()
