"""Data quality of a current window against its reference, from their profiles.

Checks (each with a threshold, failed when crossed): the share of missing values
rising above the reference's, values outside the reference's range, categories the
reference never had, values of the wrong type, columns missing or unexpected, a
row count far from the expected one, and freshness (the age of the newest dataset
version, the time since a deployment last received traffic).

>>> import pandas as pd
>>> from loopline.monitoring.profile import Profile, ProfileBuilder
>>> ref = Profile.of(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}))
>>> b = ProfileBuilder(ref)
>>> b.update(pd.DataFrame({"x": [9.0, None, 2.0], "c": ["a", "new", "new"]}))
>>> [(c.check, c.column) for c in quality(ref, b.result()) if c.failed]
[('missing_share', 'x'), ('out_of_range', 'x'), ('new_categories', 'c')]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.monitoring.profile import ColumnProfile, Profile

__all__ = ["QualityCheck", "QualityThresholds", "freshness", "quality"]


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    missing_increase: float = 0.05
    """Failed when the missing share rises by more than this (absolute)."""
    out_of_range: float = 0.05
    """Failed when more than this share of values lies outside the reference's range."""
    new_categories: float = 0.0
    """Failed when more than this share of values has a category the reference lacks."""
    invalid: float = 0.0
    """Failed when more than this share of values has the wrong type."""
    row_ratio: float = 0.5
    """Failed when the row count is below ``expected * ratio`` or above ``expected / ratio``."""


@dataclass(frozen=True, slots=True)
class QualityCheck:
    check: str
    column: str | None
    value: float
    threshold: float
    failed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def quality(
    reference: Profile,
    current: Profile,
    *,
    expected_rows: float | None = None,
    extra_columns: set[str] | frozenset[str] = frozenset(),
    sent_columns: set[str] | frozenset[str] | None = None,
    thresholds: QualityThresholds | None = None,
) -> list[QualityCheck]:
    """Every check on every column; ``failed`` marks those over their threshold.

    ``sent_columns`` (what :attr:`ProfileBuilder.sent_columns` saw) tells a column
    never sent from one sent empty.
    """
    t = thresholds or QualityThresholds()
    checks: list[QualityCheck] = []
    for name, ref in reference.columns.items():
        cur = current.columns.get(name)
        never_sent = cur is None or (sent_columns is not None and name not in sent_columns)
        if never_sent and current.rows:
            # Never sent at all: the served model does not take it (servers refuse
            # requests that lack an input), so it is noted, not failed.
            checks.append(
                QualityCheck("schema", name, 1.0, 0.0, False, f"column {name!r} is not an input")
            )
            continue
        if cur is None or (cur.count and cur.missing == cur.count and ref.missing < ref.count):
            checks.append(
                QualityCheck("schema", name, 1.0, 0.0, True, f"column {name!r} is missing")
            )
            continue
        checks.extend(_column_checks(name, ref, cur, t))
    for name in sorted(extra_columns):
        checks.append(QualityCheck("schema", name, 1.0, 0.0, True, f"unexpected column {name!r}"))
    if expected_rows is not None:
        checks.append(_rows(current.rows, expected_rows, t.row_ratio))
    return checks


def _column_checks(
    name: str, ref: ColumnProfile, cur: ColumnProfile, t: QualityThresholds
) -> list[QualityCheck]:
    out: list[QualityCheck] = []
    increase = _share(cur.missing, cur.count) - _share(ref.missing, ref.count)
    out.append(
        QualityCheck(
            "missing_share", name, increase, t.missing_increase, increase > t.missing_increase,
            f"{name}: missing share {_share(cur.missing, cur.count):.1%} "
            f"(reference {_share(ref.missing, ref.count):.1%})",
        )
    )  # fmt: skip
    invalid = _share(cur.invalid, cur.count)
    out.append(
        QualityCheck(
            "invalid_type", name, invalid, t.invalid, invalid > t.invalid,
            f"{name}: {cur.invalid} values are not {ref.kind}",
        )
    )  # fmt: skip
    if ref.kind == "numeric":
        outside = _share(cur.underflow + cur.overflow, cur.n)
        out.append(
            QualityCheck(
                "out_of_range", name, outside, t.out_of_range, outside > t.out_of_range,
                f"{name}: {outside:.1%} of values outside [{ref.min:g}, {ref.max:g}]",
            )
        )  # fmt: skip
    else:
        new = {k: v for k, v in cur.categories.items() if k not in ref.categories}
        share = _share(sum(new.values()), cur.count - cur.missing)
        shown = ", ".join(sorted(new)[:5]) + (" ..." if len(new) > 5 else "")
        out.append(
            QualityCheck(
                "new_categories", name, share, t.new_categories, share > t.new_categories,
                f"{name}: {len(new)} new categories ({shown})" if new else f"{name}: none new",
            )
        )  # fmt: skip
    return out


def _rows(rows: int, expected: float, ratio: float) -> QualityCheck:
    low, high = expected * ratio, expected / ratio if ratio else float("inf")
    failed = rows < low or rows > high
    return QualityCheck(
        "row_count", None, float(rows), expected, failed,
        f"{rows} rows (expected about {expected:.0f})",
    )  # fmt: skip


def freshness(what: str, age_ms: float | None, max_age_ms: float) -> QualityCheck:
    """A freshness check: ``age_ms`` since the newest version or request (None: never)."""
    failed = age_ms is None or age_ms > max_age_ms
    age = "never" if age_ms is None else f"{age_ms / 3_600_000:.1f} h ago"
    return QualityCheck(
        "freshness", what, float("inf") if age_ms is None else age_ms, max_age_ms, failed,
        f"{what}: newest {age} (limit {max_age_ms / 3_600_000:.1f} h)",
    )  # fmt: skip
