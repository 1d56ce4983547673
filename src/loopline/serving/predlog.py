"""Prediction and feedback logging, off the request path, in :mod:`loopline.predlog`'s layout.

A request only appends its batch slice to an in-memory list. A background thread
writes what accumulated every ``flush_interval`` seconds as one Parquet file per
partition: written under a temporary name in the partition folder, then renamed,
so a reader never sees half a file. A process killed with SIGKILL loses at most
the rows of the last interval; a temporary file it leaves behind is removed by the
next logger of the same source once it is old enough not to be another worker's.

Sampling keeps a request with probability ``sample_rate``; ``exclude`` drops input
columns; ``hash_columns`` replaces their values with blake3 hex digests; files of
days older than ``retention_days`` are deleted.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from loopline import predlog

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.serving.model import Prediction, ServedModel

__all__ = ["LogSettings", "PredictionLogger"]

_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 3600.0
_RETENTION_CHECK_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class LogSettings:
    """What is logged: a share of requests, minus excluded columns, hashed ones hashed."""

    enabled: bool = True
    sample_rate: float = 1.0
    exclude: tuple[str, ...] = ()
    hash_columns: tuple[str, ...] = ()
    retention_days: int | None = 30
    flush_interval: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "sample_rate": self.sample_rate,
            "exclude": list(self.exclude),
            "hash_columns": list(self.hash_columns),
            "retention_days": self.retention_days,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogSettings:
        return cls(
            enabled=bool(data.get("enabled", True)),
            sample_rate=float(data.get("sample_rate", 1.0)),
            exclude=tuple(data.get("exclude") or ()),
            hash_columns=tuple(data.get("hash_columns") or ()),
            retention_days=data.get("retention_days", 30),
        )


@dataclass(slots=True)
class _Chunk:
    request_ids: list[str]
    rows: list[int]
    timestamp_us: int
    model: ServedModel
    variant: str
    latency_ms: float
    data: Any
    prediction: Prediction
    day: str = field(default="")


class PredictionLogger:
    """Buffers predictions and feedback of one source and writes them in the background."""

    def __init__(self, root: Path, source: str, settings: LogSettings | None = None) -> None:
        self.root = root
        self.source = source
        self.settings = settings or LogSettings()
        predlog.source_dir(root, "predictions", source)  # refuses a bad name now
        self._chunks: list[_Chunk] = []
        self._feedback: list[tuple[str, Any, int]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_retention = 0.0
        self.errors = 0

    # -- the request side ----------------------------------------------------------------
    def sampled(self) -> bool:
        rate = self.settings.sample_rate
        return self.settings.enabled and (rate >= 1.0 or random.random() < rate)

    def log(
        self,
        request_ids: list[str],
        rows: list[int],
        model: ServedModel,
        variant: str,
        latency_ms: float,
        data: Any,
        prediction: Prediction,
    ) -> None:
        """Queue one request's (or a few requests') rows; never blocks on I/O."""
        chunk = _Chunk(
            request_ids, rows, time.time_ns() // 1000, model, variant, latency_ms, data, prediction
        )
        self._chunks.append(chunk)  # list.append is atomic under the GIL

    def feedback(self, items: list[tuple[str, Any]]) -> None:
        now = time.time_ns() // 1000
        with self._lock:
            self._feedback.extend((rid, label, now) for rid, label in items)

    # -- the background side -------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._remove_stale_temp_files()
        self._thread = threading.Thread(
            target=self._loop, name=f"loopline-predlog-{self.source}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Write what is buffered and stop the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.flush_interval)
            self._wake.clear()
            try:
                self.flush()
                self._apply_retention()
            except Exception:  # the log must never take the server down
                self.errors += 1

    def flush(self) -> int:
        """Write everything buffered now; the number of prediction rows written."""
        chunks, self._chunks = self._chunks, []
        with self._lock:
            feedback, self._feedback = self._feedback, []
        written = 0
        if chunks:
            written = self._write_predictions(chunks)
        if feedback:
            self._write_feedback(feedback)
        return written

    def _write_predictions(self, chunks: list[_Chunk]) -> int:
        groups: dict[tuple[str, tuple[str, ...], bool], list[_Chunk]] = defaultdict(list)
        for chunk in chunks:
            day = datetime.fromtimestamp(chunk.timestamp_us / 1e6, UTC).strftime("%Y-%m-%d")
            width = _width(chunk.data)
            names = tuple(chunk.model.feature_names(width))
            groups[(day, names, chunk.prediction.proba is not None)].append(chunk)
        total = 0
        for (_day, names, _proba), group in groups.items():
            table = self._predictions_table(group, list(names))
            when = datetime.fromtimestamp(group[0].timestamp_us / 1e6, UTC)
            self._write(table, "predictions", when)
            total += table.num_rows
        return total

    def _predictions_table(self, group: list[_Chunk], names: list[str]) -> Any:
        import pyarrow as pa

        request_ids: list[str] = []
        timestamps: list[int] = []
        versions: list[str] = []
        model_names: list[str] = []
        variants: list[str] = []
        latency: list[float] = []
        for chunk in group:
            for rid, count in zip(chunk.request_ids, chunk.rows, strict=True):
                request_ids.extend([rid] * count)
                timestamps.extend([chunk.timestamp_us] * count)
                versions.extend([chunk.model.version] * count)
                model_names.extend([chunk.model.name] * count)
                variants.extend([chunk.variant] * count)
                latency.extend([chunk.latency_ms] * count)
        n = len(request_ids)
        columns: dict[str, Any] = {
            "request_id": pa.array(request_ids, pa.string()),
            "timestamp": pa.array(timestamps, pa.timestamp("us", "UTC")),
            "source": pa.array([self.source] * n, pa.string()),
            "model_name": pa.array(model_names, pa.string()),
            "model_version": pa.array(versions, pa.string()),
            "variant": pa.array(variants, pa.string()),
            "latency_ms": pa.array(latency, pa.float64()),
        }
        inputs = _input_columns([c.data for c in group], names)
        for name, values in inputs.items():
            if name in self.settings.exclude:
                continue
            if name in self.settings.hash_columns:
                values = _hashed(values)
            columns[predlog.INPUT_PREFIX + name] = values
        outputs = np.concatenate([np.asarray(c.prediction.outputs) for c in group])
        if outputs.ndim == 1:
            columns[predlog.OUTPUT_PREFIX + "prediction"] = _arrow(outputs)
        else:
            for j in range(outputs.shape[1]):
                columns[f"{predlog.OUTPUT_PREFIX}{j}"] = _arrow(outputs[:, j])
        if group[0].prediction.proba is not None:
            proba = np.concatenate([np.asarray(c.prediction.proba) for c in group])
            classes = group[0].model.classes or list(range(proba.shape[1]))
            for j, label in enumerate(classes):
                columns[f"{predlog.PROBA_PREFIX}{label}"] = pa.array(proba[:, j], pa.float64())
        return pa.table(columns)

    def _write_feedback(self, items: list[tuple[str, Any, int]]) -> None:
        import pyarrow as pa

        by_type: dict[str, list[tuple[str, Any, int]]] = defaultdict(list)
        for item in items:
            label = item[1]
            kind = (
                "bool"
                if isinstance(label, bool)
                else "int"
                if isinstance(label, int)
                else "float"
                if isinstance(label, float)
                else "str"
            )
            by_type[kind].append(item if kind != "str" else (item[0], str(label), item[2]))
        types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
        for kind, rows in by_type.items():
            table = pa.table(
                {
                    "request_id": pa.array([r[0] for r in rows], pa.string()),
                    "timestamp": pa.array([r[2] for r in rows], pa.timestamp("us", "UTC")),
                    "label": pa.array([r[1] for r in rows], types[kind]),
                }
            )
            self._write(table, "feedback", datetime.fromtimestamp(rows[0][2] / 1e6, UTC))

    def _write(self, table: Any, kind: predlog.Kind, when: datetime) -> None:
        import pyarrow.parquet as pq

        final = predlog.new_file_path(self.root, kind, self.source, when)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex}.parquet")
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _remove_stale_temp_files(self) -> None:
        cutoff = time.time() - _STALE_TMP_SECONDS
        for kind in ("predictions", "feedback"):
            base = predlog.source_dir(self.root, kind, self.source)
            for tmp in base.glob(f"date=*/{_TMP_PREFIX}*"):
                with contextlib.suppress(OSError):
                    if tmp.stat().st_mtime < cutoff:
                        tmp.unlink()

    def _apply_retention(self) -> None:
        days = self.settings.retention_days
        now = time.monotonic()
        if not days or now - self._last_retention < _RETENTION_CHECK_SECONDS:
            return
        self._last_retention = now
        remove_older_than(self.root, self.source, datetime.now(UTC) - timedelta(days=days))


def remove_older_than(root: Path, source: str, cutoff: datetime) -> list[Path]:
    """Delete the day partitions of ``source`` that end before ``cutoff``; those removed."""
    removed: list[Path] = []
    first_kept = cutoff.astimezone(UTC).strftime("%Y-%m-%d")
    for kind in ("predictions", "feedback"):
        base = predlog.source_dir(root, kind, source)
        if not base.is_dir():
            continue
        for day in base.iterdir():
            if day.name.startswith("date=") and day.name[5:] < first_kept:
                shutil.rmtree(day, ignore_errors=True)
                removed.append(day)
    return removed


def _width(data: Any) -> int:
    shape = getattr(data, "shape", None)
    if shape is not None and len(shape) >= 2:
        return int(shape[1])
    return 1


def _input_columns(parts: list[Any], names: list[str]) -> dict[str, Any]:
    import pyarrow as pa

    if isinstance(parts[0], np.ndarray):
        arr = np.concatenate(parts) if len(parts) > 1 else parts[0]
        arr = arr.reshape(len(arr), -1)
        if arr.shape[1] != len(names):
            return {}
        return {name: _arrow(arr[:, j]) for j, name in enumerate(names)}
    import pandas as pd

    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    out: dict[str, Any] = {}
    for j, name in enumerate(names):
        if j < frame.shape[1]:
            try:
                out[name] = pa.array(frame.iloc[:, j], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                out[name] = pa.array(frame.iloc[:, j].astype(str))
    return out


def _arrow(values: np.ndarray[Any, Any]) -> Any:
    import pyarrow as pa

    if values.dtype.kind in "biuf":
        return pa.array(values)
    return pa.array([None if v is None else str(v) for v in values.tolist()], pa.string())


def _hashed(values: Any) -> Any:
    import blake3
    import pyarrow as pa

    return pa.array(
        [
            None if v is None else blake3.blake3(str(v).encode()).hexdigest()
            for v in values.to_pylist()
        ],
        pa.string(),
    )
