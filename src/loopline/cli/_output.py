"""Output helpers: consoles, JSON for machines, and value formatting for tables.

Rich is imported when something is printed, not when the CLI loads.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rich.console import Console
    from rich.table import Table

__all__ = [
    "common_keys",
    "esc",
    "format_bytes",
    "format_duration",
    "format_time",
    "format_value",
    "jsonable",
    "print_json",
    "sparkline",
    "status_style",
    "stderr",
    "stdout",
    "table",
]


def stdout() -> Console:
    """A console on the current stdout (so test runners that swap it see the output)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def esc(text: str) -> str:
    """Escape rich markup in user-supplied text (names, values) before it goes in a table."""
    from rich.markup import escape

    return escape(text)


def table(*columns: str, title: str | None = None) -> Table:
    from rich.table import Table

    result = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        result.add_column(name)
    return result


def jsonable(value: Any) -> Any:
    """Floats that JSON cannot carry become MLflow's strings ("NaN", "Infinity").

    >>> jsonable({"a": [float("nan"), 1.5, float("-inf")]})
    {'a': ['NaN', 1.5, '-Infinity']}
    """
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Machine output: indented JSON on stdout, keys in the order given."""
    sys.stdout.write(json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def format_time(ms: int | None) -> str:
    """Epoch milliseconds as local time, to the second."""
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def format_duration(start_ms: int | None, end_ms: int | None) -> str:
    """A run's duration in a compact form.

    >>> format_duration(0, 1500), format_duration(0, 125_000), format_duration(0, 7_380_000)
    ('1.5s', '2m05s', '2h03m')
    >>> format_duration(0, None)
    '-'
    """
    if start_ms is None or end_ms is None:
        return "-"
    seconds = max(0, end_ms - start_ms) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_value(value: Any) -> str:
    """Metric values with enough digits to tell runs apart.

    >>> format_value(0.98765432), format_value(12345678.0), format_value(float("nan"))
    ('0.987654', '1.23457e+07', 'nan')
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_bytes(size: int | None) -> str:
    """
    >>> format_bytes(512), format_bytes(2048), format_bytes(5 * 1024**3)
    ('512 B', '2.0 KiB', '5.0 GiB')
    """
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """A metric history in a few characters (finite values only, sampled to ``width``).

    >>> sparkline([0.0, 0.5, 1.0])
    '▁▅█'
    >>> sparkline([2.0, 2.0])
    '▄▄'
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(finite) > width:
        finite = [finite[int(i * len(finite) / width)] for i in range(width)]
    low, high = min(finite), max(finite)
    if high == low:
        return _BARS[3] * len(finite)
    scale = (len(_BARS) - 1) / (high - low)
    return "".join(_BARS[round((v - low) * scale)] for v in finite)


_STATUS_STYLES = {"FINISHED": "green", "RUNNING": "yellow", "FAILED": "red", "KILLED": "dim"}


def status_style(status: str) -> str:
    return _STATUS_STYLES.get(status, "")


def common_keys(dicts: Iterable[dict[str, Any]]) -> list[str]:
    """Keys ordered by how many of ``dicts`` have them, then by name.

    >>> common_keys([{"b": 1, "a": 1}, {"b": 2}])
    ['b', 'a']
    """
    counts: dict[str, int] = {}
    for d in dicts:
        for key in d:
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))
