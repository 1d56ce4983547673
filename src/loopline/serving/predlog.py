"""Prediction and feedback logging, off the request path, in :mod:`loopline.predlog`'s layout.

A request only appends one tuple to a list. Every ``flush_interval`` seconds a
background thread turns what accumulated into Arrow columns (whole-column NumPy and
Arrow work, no per-row Python) and hands the table, as Arrow IPC bytes over a pipe,
to a writer process (:mod:`loopline.serving._logwriter`), which hashes the columns
to hash, encodes Parquet and renames each file into its partition. Parquet encoding
holds the GIL for long stretches; in the serving process that showed up as the
p99 latency of every request in flight, so it runs elsewhere. When the writer
cannot start or dies, the thread writes the files itself.

A file is written under a temporary name in the partition folder, then renamed, so
a reader never sees half a file. A server killed with SIGKILL loses at most the
rows of the last interval: the writer sees the pipe close, writes every complete
table it received and exits; a half-sent table is dropped. A temporary file left
by a killed writer is removed by the next logger of the same source once it is old
enough not to be another worker's.

Sampling keeps a request with probability ``sample_rate``; ``exclude`` drops input
columns; ``hash_columns`` replaces their values with blake3 hex digests; files of
days older than ``retention_days`` are deleted.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from loopline import predlog
from loopline.serving._logwriter import TMP_PREFIX as _TMP_PREFIX

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.serving.model import Prediction, ServedModel

__all__ = ["LogSettings", "PredictionLogger"]

_STALE_TMP_SECONDS = 3600.0
_RETENTION_CHECK_SECONDS = 3600.0
_DAY_US = 86_400 * 1_000_000


class _WriterPipe:
    """The writer process of one logger and the pipe to it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    @classmethod
    def start(cls, root: Path, source: str, hash_columns: tuple[str, ...]) -> _WriterPipe | None:
        import orjson

        argv = [sys.executable, "-m", "loopline.serving._logwriter"]
        argv.append(orjson.dumps([str(root), source, list(hash_columns)]).decode())
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, close_fds=True)
        except OSError:
            return None
        return cls(proc)

    def send(self, table: Any, kind: predlog.Kind, when: datetime) -> bool:
        """Hand ``table`` over; False when the writer is gone."""
        from loopline.serving._logwriter import frame

        stdin = self.proc.stdin
        if stdin is None or self.proc.poll() is not None:
            return False
        try:
            stdin.write(frame(table, kind, when))
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Close the pipe and wait for the writer to write what it received."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


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


# One logged request (or a few): request ids, rows of each, total rows, time (us),
# model, variant, latency (ms), input, outputs, class probabilities. A tuple: the
# request side builds one per request, and ``zip(*chunks)`` transposes them in C.
_Chunk = tuple[
    list[str], list[int], int, int, "ServedModel", str, float, Any, "np.ndarray[Any, Any]", Any
]


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
        self._pipe: _WriterPipe | None = None
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
        total = rows[0] if len(rows) == 1 else sum(rows)
        self._chunks.append(  # list.append is atomic under the GIL
            (
                request_ids,
                rows,
                total,
                time.time_ns() // 1000,
                model,
                variant,
                latency_ms,
                data,
                prediction.outputs,
                prediction.proba,
            )
        )

    def feedback(self, items: list[tuple[str, Any]]) -> None:
        now = time.time_ns() // 1000
        with self._lock:
            self._feedback.extend((rid, label, now) for rid, label in items)

    # -- the background side -------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._remove_stale_temp_files()
        self._pipe = _WriterPipe.start(self.root, self.source, self.settings.hash_columns)
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
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None

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
        fields = list(zip(*chunks, strict=True))
        models, probas = fields[4], fields[9]
        first = models[0]
        if all(m is first for m in models):
            groups = {(first, probas[0] is not None): fields}
        else:  # several models (canary, shadow, a swap): one table per model
            index: dict[tuple[Any, bool], list[int]] = defaultdict(list)
            for i, (model, proba) in enumerate(zip(models, probas, strict=True)):
                index[(model, proba is not None)].append(i)
            groups = {
                key: [tuple(f[i] for i in rows) for f in fields] for key, rows in index.items()
            }
        total = 0
        for (model, _proba), group in groups.items():
            stamps = np.fromiter(group[3], np.int64, len(group[3]))
            days = stamps // _DAY_US
            unique = np.unique(days)
            for day in unique:
                part = group
                if len(unique) > 1:  # the interval spans midnight (UTC)
                    keep = np.flatnonzero(days == day)
                    part = [tuple(f[i] for i in keep) for f in group]
                table = self._predictions_table(part, model)
                self._write(table, "predictions", datetime.fromtimestamp(int(day) * 86_400, UTC))
                total += table.num_rows
        return total

    def _predictions_table(self, fields: list[Any], model: ServedModel) -> Any:
        import pyarrow as pa

        rids, rows, totals, stamps, _, variants, latency, data, outputs, probas = fields
        n_chunks = len(totals)
        per_chunk = np.fromiter(totals, np.int64, n_chunks)
        n = int(per_chunk.sum())
        if n == n_chunks and all(len(r) == 1 for r in rids):
            request_ids = pa.array([r[0] for r in rids], pa.string())
            rid_rows = per_chunk
        else:
            request_ids = pa.array([r for ids in rids for r in ids], pa.string())
            rid_rows = np.fromiter((k for each in rows for k in each), np.int64)
        to_rows = np.repeat(np.arange(n_chunks), per_chunk) if n != n_chunks else None
        zeros = np.zeros(n, np.int64)

        def per_row(values: Any) -> Any:
            return values if to_rows is None else values[to_rows]

        columns: dict[str, Any] = {
            "request_id": request_ids
            if n == len(request_ids)
            else request_ids.take(np.repeat(np.arange(len(request_ids)), rid_rows)),
            "timestamp": pa.array(
                per_row(np.fromiter(stamps, np.int64, n_chunks)), pa.timestamp("us", "UTC")
            ),
            "source": pa.array([self.source], pa.string()).take(zeros),
            "model_name": pa.array([model.name], pa.string()).take(zeros),
            "model_version": pa.array([model.version], pa.string()).take(zeros),
            "variant": pa.array(variants, pa.string()).take(per_row(np.arange(n_chunks))),
            "latency_ms": pa.array(per_row(np.fromiter(latency, np.float64, n_chunks))),
        }
        width = _width(data[0])
        for name, values in _input_columns(list(data), model.feature_names(width)).items():
            if name not in self.settings.exclude:
                columns[predlog.INPUT_PREFIX + name] = values
        out = np.concatenate(outputs)
        if out.ndim == 1:
            columns[predlog.OUTPUT_PREFIX + "prediction"] = _arrow(out)
        else:
            for j in range(out.shape[1]):
                columns[f"{predlog.OUTPUT_PREFIX}{j}"] = _arrow(out[:, j])
        if probas[0] is not None:
            proba = np.ascontiguousarray(np.concatenate(probas).T, dtype=np.float64)
            classes = model.classes or list(range(proba.shape[0]))
            for j, label in enumerate(classes):
                columns[f"{predlog.PROBA_PREFIX}{label}"] = pa.array(proba[j], pa.float64())
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
        if "int" in by_type and "float" in by_type:  # 3 and 3.5 are one column of numbers
            by_type["float"].extend((r, float(v), t) for r, v, t in by_type.pop("int"))
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
        pipe = self._pipe
        if pipe is not None:
            if pipe.send(table, kind, when):
                return
            self._pipe = None  # the writer died: write here from now on
            pipe.close()
            self.errors += 1
        from loopline.serving._logwriter import write_file

        write_file(self.root, self.source, table, kind, when, self.settings.hash_columns)

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
        by_column = np.ascontiguousarray(arr.T)  # one copy, then each column is contiguous
        return {name: _arrow(by_column[j]) for j, name in enumerate(names)}
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
