"""A report as one standalone HTML page: a summary, then per column the two distributions.

No scripts and no outside assets: the charts are inline SVG, so the file opens
anywhere (and in mail) the same way. Every value from the data is escaped.
"""

from __future__ import annotations

import itertools
import math
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.monitoring.datadrift import ColumnDrift
    from loopline.monitoring.reports import Report

__all__ = ["render"]

_W, _H = 360, 120
_REF, _CUR = "#5b8def", "#f08c3a"

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2330}
h1{font-size:1.5rem} .verdict{padding:.8rem 1rem;border-radius:6px;font-size:1.1rem}
.drift{background:#fde2e1;color:#8a1c16} .ok{background:#e2f5e7;color:#175c2c}
table{border-collapse:collapse;width:100%;margin:1rem 0}
td,th{border-bottom:1px solid #e3e6ec;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f6fa} .bad{color:#b3261e;font-weight:600} .good{color:#1e7a3c}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}
"""


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


def _numeric_svg(dist: dict[str, Any]) -> str:
    edges, ref, cur = dist["edges"], dist["ref"], dist["cur"]
    low, high = edges[0], edges[-1]
    span = (high - low) or 1.0
    widths = [max(b - a, span * 1e-9) for a, b in itertools.pairwise(edges)]
    dens_r = [s / w for s, w in zip(ref, widths, strict=True)]
    dens_c = [s / w for s, w in zip(cur, widths, strict=True)]
    top = max([*dens_r, *dens_c, 1e-12])
    bars = []
    for i, (a, w) in enumerate(zip(edges, widths, strict=False)):
        x = (a - low) / span * _W
        bw = max(w / span * _W, 0.5)
        for dens, colour in ((dens_r[i], _REF), (dens_c[i], _CUR)):
            h = dens / top * (_H - 14)
            bars.append(
                f'<rect x="{x:.1f}" y="{_H - 14 - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                f'fill="{colour}" fill-opacity="0.5"/>'
            )
    axis = (
        f'<text x="0" y="{_H - 2}" font-size="10">{escape(_fmt(low))}</text>'
        f'<text x="{_W}" y="{_H - 2}" font-size="10" text-anchor="end">{escape(_fmt(high))}</text>'
    )
    return f'<svg width="{_W}" height="{_H}" role="img">{"".join(bars)}{axis}</svg>'


def _categorical_svg(dist: dict[str, Any]) -> str:
    cats, ref, cur = dist["categories"][:12], dist["ref"][:12], dist["cur"][:12]
    top = max([*ref, *cur, 1e-12])
    row = 16
    parts = []
    for i, cat in enumerate(cats):
        y = i * row
        parts.append(f'<text x="0" y="{y + 11}" font-size="10">{escape(cat[:18])}</text>')
        for j, (share, colour) in enumerate(((ref[i], _REF), (cur[i], _CUR))):
            w = share / top * (_W - 120)
            parts.append(
                f'<rect x="110" y="{y + j * 7}" width="{w:.1f}" height="6" fill="{colour}"/>'
            )
    height = max(len(cats) * row, row)
    return f'<svg width="{_W}" height="{height}" role="img">{"".join(parts)}</svg>'


def _column_row(c: ColumnDrift) -> str:
    chart = ""
    if c.distribution:
        chart = (
            _numeric_svg(c.distribution) if "edges" in c.distribution
            else _categorical_svg(c.distribution)
        )  # fmt: skip
    verdict = '<span class="bad">drift</span>' if c.drifted else '<span class="good">ok</span>'
    score = f"p = {_fmt(c.p_value)}" if c.p_value is not None else f"distance {_fmt(c.statistic)}"
    bound = f" ± {_fmt(c.error_bound)}" if c.error_bound else ""
    return (
        f"<tr><td><b>{escape(c.column)}</b><br>{escape(c.kind)}"
        f"{' (prediction)' if c.role == 'prediction' else ''}</td><td>{verdict}</td>"
        f"<td>{escape(c.method)}<br>statistic {_fmt(c.statistic)}{bound}<br>{score}"
        f"<br>threshold {_fmt(c.threshold)}</td><td>{chart}</td></tr>"
    )


def render(report: Report) -> str:
    d = report.drift
    n_features = sum(c.role == "feature" for c in d.columns)
    verdict = (
        f'<p class="verdict drift">Dataset drift: {len(d.drifted_columns)} of {n_features} '
        f"features drifted ({d.drift_share:.0%}, threshold {d.share_threshold:.0%})</p>"
        if d.dataset_drift
        else f'<p class="verdict ok">No dataset drift: {len(d.drifted_columns)} of '
        f"{n_features} features drifted ({d.drift_share:.0%}, threshold "
        f"{d.share_threshold:.0%})</p>"
    )
    ordered = sorted(d.columns, key=lambda c: (not c.drifted, c.column))
    rows = "".join(_column_row(c) for c in ordered)
    failed = [c for c in report.quality if c.failed]
    quality = (
        "".join(
            f"<tr><td>{escape(c.check)}</td><td>{escape(c.column or '')}</td>"
            f"<td>{escape(c.message)}</td></tr>"
            for c in failed
        )
        or '<tr><td colspan="3" class="good">every check passed</td></tr>'
    )
    perf = ""
    if report.performance:
        keys = sorted(report.performance["current"])
        perf = "<h2>Model quality</h2><table><tr><th>metric</th><th>reference</th><th>current</th></tr>"
        perf += "".join(
            f"<tr><td>{escape(k)}</td><td>{_fmt(report.performance['reference'].get(k))}</td>"
            f"<td>{_fmt(report.performance['current'].get(k))}</td></tr>"
            for k in keys
        )
        perf += "</table>"
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(report.title)}</h1>{verdict}"
        f"<p>Reference {d.ref_rows:,} rows, current {d.cur_rows:,} rows.</p>"
        f'<p class="legend"><span style="background:{_REF}"></span>reference'
        f'<span style="background:{_CUR}"></span>current</p>'
        f"<h2>Columns</h2><table><tr><th>column</th><th>verdict</th><th>test</th>"
        f"<th>distributions</th></tr>{rows}</table>"
        f"<h2>Data quality</h2><table><tr><th>check</th><th>column</th><th>finding</th></tr>"
        f"{quality}</table>{perf}</body></html>"
    )
