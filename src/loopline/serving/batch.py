"""Batch scoring: ``loopline predict MODEL --input FILE|DATASET@REF --output FILE.parquet``.

The input streams in chunks (Parquet row batches, CSV blocks), so files larger than
memory score in constant memory. The output holds the input's columns, then
``prediction`` and, for classifiers, ``proba_<class>``; it is written to a temporary
file next to the destination and renamed when complete.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

__all__ = ["Scored", "score_file"]


@dataclass(frozen=True, slots=True)
class Scored:
    output: Path
    rows: int
    seconds: float


def _source(spec: str) -> Path:
    path = Path(spec)
    if path.is_file():
        return path
    if "@" in spec or not path.suffix:
        import loopline.data

        try:
            return loopline.data.get(spec).file
        except NotFoundError:
            raise
    raise NotFoundError(
        f"no input file {spec}", hint="give a .parquet or .csv file, or DATASET@REF"
    )


def _batches(path: Path, chunk_size: int) -> tuple[Iterator[pa.RecordBatch], int | None, bool]:
    """The input's record batches, its row count when known, and whether counts are rows
    (else bytes of the file)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        return parquet.iter_batches(batch_size=chunk_size), parquet.metadata.num_rows, True
    if suffix in (".csv", ".txt"):
        import pyarrow.csv as pcsv

        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 22))
        return iter(reader), None, False
    raise InvalidArgumentError(
        f"cannot read {path.name}: only Parquet and CSV inputs are scored",
        hint="convert it to .parquet or .csv",
    )


def score_file(
    model_uri: str,
    source: str,
    output: str | os.PathLike[str],
    *,
    chunk_size: int = 50_000,
    trusted: bool = False,
    progress: bool = False,
) -> Scored:
    """Score ``source`` with ``model_uri`` into the Parquet file ``output``.

    >>> import tempfile, pandas as pd
    >>> from sklearn.linear_model import LinearRegression
    >>> from loopline.models import save_model
    >>> d = tempfile.mkdtemp()
    >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    >>> _ = save_model(LinearRegression().fit(frame, [0.0, 2.0, 4.0]), f"{d}/m", input_example=frame)
    >>> frame.to_csv(f"{d}/in.csv", index=False)
    >>> score_file(f"{d}/m", f"{d}/in.csv", f"{d}/out.parquet").rows
    3
    >>> pd.read_parquet(f"{d}/out.parquet")["prediction"].round(3).tolist()
    [0.0, 2.0, 4.0]
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopline.serving.model import load_served

    started = time.perf_counter()
    model = load_served(model_uri, trusted=trusted)
    path = _source(source)
    batches, total, by_rows = _batches(path, chunk_size)
    dest = Path(output)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        with _progress(progress, total if by_rows else path.stat().st_size) as advance:
            for batch in batches:
                table = _score(model, batch)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                rows += batch.num_rows
                advance(batch.num_rows if by_rows else batch.nbytes)
        if writer is None:  # an empty input still gives a (empty) output
            pq.write_table(pa.table({}), tmp)
        else:
            writer.close()
            writer = None
        os.replace(tmp, dest)
    finally:
        if writer is not None:
            writer.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return Scored(dest, rows, time.perf_counter() - started)


def _score(model: Any, batch: pa.RecordBatch) -> pa.Table:
    import pyarrow as pa

    frame = batch.to_pandas()
    prediction = model.predict(model.from_frame(frame))
    table = pa.Table.from_batches([batch])
    outputs = prediction.outputs
    if outputs.ndim == 1:
        table = table.append_column("prediction", pa.array(outputs))
    else:
        for j in range(outputs.shape[1]):
            table = table.append_column(f"prediction_{j}", pa.array(outputs[:, j]))
    if prediction.proba is not None:
        for j, label in enumerate(model.classes or range(prediction.proba.shape[1])):
            table = table.append_column(f"proba_{label}", pa.array(prediction.proba[:, j]))
    return table


@contextlib.contextmanager
def _progress(show: bool, total: int | None) -> Iterator[Any]:
    if not show:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    from loopline.cli._output import stderr

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=stderr(),
        transient=True,
    ) as bar:
        task = bar.add_task("scoring", total=total)
        yield lambda n: bar.advance(task, n)
