"""Reports: drift, data quality and model quality of a current table against a reference.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=300), "y": rng.integers(0, 2, 300)})
>>> cur = pd.DataFrame({"x": rng.normal(1.0, size=300), "y": rng.integers(0, 2, 300)})
>>> r = report(ref, cur, target="y")
>>> r.drift.dataset_drift, r.drift.drifted_columns
(True, ['x'])
>>> "<svg" in r.to_html(), sorted(r.to_dict())
(True, ['drift', 'performance', 'quality', 'summary'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.config import get_settings

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from loopline.config import Settings
    from loopline.monitoring.datadrift import DriftReport
    from loopline.monitoring.quality import QualityCheck

__all__ = ["Report", "load_table", "report"]


@dataclass(slots=True)
class Report:
    drift: DriftReport
    quality: list[QualityCheck]
    performance: dict[str, Any] | None
    title: str = "Drift report"

    def summary(self) -> dict[str, Any]:
        return {
            "dataset_drift": self.drift.dataset_drift,
            "drifted_columns": self.drift.drifted_columns,
            "drift_share": self.drift.drift_share,
            "quality_failures": sum(c.failed for c in self.quality),
            "ref_rows": self.drift.ref_rows,
            "cur_rows": self.drift.cur_rows,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "drift": self.drift.to_dict(),
            "quality": [c.to_dict() for c in self.quality],
            "performance": self.performance,
        }

    def to_json(self) -> bytes:
        import orjson

        return orjson.dumps(self.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)

    def to_html(self) -> str:
        from loopline.monitoring._html import render

        return render(self)

    def save(self, path: Path, fmt: str = "html") -> Path:
        """Write the report (``html`` or ``json``) atomically: temp file, then rename."""
        import os
        import tempfile

        data = self.to_html().encode() if fmt == "html" else self.to_json()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return path


def report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    target: str | None = None,
    prediction: str | None = None,
    methods: dict[str, str] | None = None,
    thresholds: dict[str, float] | None = None,
    drift_share: float = 0.5,
    quality_checks: bool = True,
) -> Report:
    """Compare two DataFrames: per-column drift, dataset drift, quality and model quality.

    Model quality needs both ``target`` and ``prediction`` in both tables.
    """
    from loopline.monitoring.datadrift import drift
    from loopline.monitoring.performance import metrics

    result = drift(reference, current, methods=methods, thresholds=thresholds,
                   drift_share=drift_share, prediction=prediction, target=target)  # fmt: skip
    checks: list[QualityCheck] = []
    if quality_checks:
        from loopline.monitoring.profile import Profile, ProfileBuilder
        from loopline.monitoring.quality import quality

        ref_p = Profile.of(reference, bins=100)
        builder = ProfileBuilder(ref_p)
        builder.update(current)
        checks = quality(ref_p, builder.result(), extra_columns=builder.extra_columns)
    perf = None
    if target and prediction and all(c in df for c in (target, prediction)
                                      for df in (reference, current)):  # fmt: skip
        perf = {
            "reference": metrics(reference[target].to_numpy(), reference[prediction].to_numpy()),
            "current": metrics(current[target].to_numpy(), current[prediction].to_numpy()),
        }
    return Report(result, checks, perf)


def load_table(ref: str, settings: Settings | None = None) -> pd.DataFrame:
    """A CSV/TSV/Parquet file, or a dataset version ``NAME@REF``, as a DataFrame."""
    from pathlib import Path

    from loopline.data.profile import read_table, tabular_format
    from loopline.errors import InvalidArgumentError

    path = Path(ref)
    if path.is_file():
        fmt = tabular_format(path.name)
        if fmt is None:
            raise InvalidArgumentError(
                f"{ref!r} is not a CSV, TSV or Parquet file", hint="give a table or NAME@REF"
            )
        df: pd.DataFrame = read_table(str(path), fmt).to_pandas()
        return df
    from loopline.data.service import DataService

    service = DataService(settings or get_settings())
    try:
        return service.resolve(ref).to_pandas()
    finally:
        service.close()
