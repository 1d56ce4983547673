"""Compile parsed filters and order keys to SQLAlchemy Core over the metadata schema.

Every user-supplied key and value becomes a bound parameter; no SQL text is ever
built from user strings.

Semantics, following MLflow's SQL store:

* Metric, param and tag comparisons are semi-joins (``runs.id IN (SELECT run_id
  ...)``) that use the ``(key, value)`` indexes.
* A metric comparison tests the run's latest value of that metric. NaN is stored as
  NULL, and like NaN it matches no comparison except ``!=``.
* ``params.x != 'a'`` (and ``NOT IN``) means the run *has* param ``x`` with another
  value; ``IS NULL`` means the run has no param ``x``. Tags likewise.
* LIKE is case-sensitive and ILIKE is not, on SQLite and PostgreSQL alike; both take
  a backslash as escape character. ILIKE folds only ASCII letters on SQLite.
* Missing values (a run without the metric, param or tag, a NULL ``end_time``) sort
  last in both directions; text sorts by code point on both backends. Ties break on
  ``start_time DESC`` then ``run_id``, so pages never overlap or skip a run.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Literal, cast

import sqlalchemy as sa

from loopline.errors import InvalidArgumentError
from loopline.store.metadata.schema import latest_metrics, params, runs, tags
from loopline.tracking.search._dialects import ESCAPE, Bytewise, CaseSensitiveLike
from loopline.tracking.search._fields import ATTRIBUTES, Value
from loopline.tracking.search.parser import (
    And,
    Comparison,
    Node,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["build_search_query", "compile_filter", "compile_order_by"]

View = Literal["active", "deleted", "all"]
_TABLES = {"metric": latest_metrics, "param": params, "tag": tags}
_VIEWS: dict[str, tuple[str, ...]] = {
    "active": ("active",),
    "deleted": ("deleted",),
    "all": ("active", "deleted"),
}
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def build_search_query(
    *,
    experiment_ids: Sequence[int],
    filter: str | None,
    order_by: Sequence[str] | None,
    view: View = "active",
    limit: int,
    offset: int,
) -> sa.Select[Any]:
    """The ``runs`` rows matching a search, ordered and paginated.

    >>> query = build_search_query(
    ...     experiment_ids=[0], filter="params.model = 'rf'", order_by=["metrics.auc DESC"],
    ...     limit=10, offset=0,
    ... )
    >>> "'rf'" in str(query), query.selected_columns.keys() == runs.c.keys()
    (False, True)
    """
    if view not in _VIEWS:
        raise InvalidArgumentError(f"unknown view {view!r}", hint="use active, deleted or all")
    if limit < 0 or offset < 0:
        raise InvalidArgumentError(
            f"invalid page: limit={limit}, offset={offset}", hint="both must be 0 or more"
        )
    query = sa.select(runs).where(runs.c.experiment_id.in_(list(experiment_ids)))
    stages = _VIEWS[view]
    if len(stages) == 1:
        query = query.where(runs.c.lifecycle_stage == stages[0])
    node = parse_filter(filter)
    if node is not None:
        query = query.where(compile_filter(node))
    query, clauses = compile_order_by(query, parse_order_by(list(order_by or ())))
    return query.order_by(*clauses).limit(limit).offset(offset)


def compile_filter(node: Node) -> sa.ColumnElement[bool]:
    """A boolean expression over ``runs`` that is true for the runs ``node`` matches.

    >>> from loopline.tracking.search.parser import parse_filter
    >>> print(compile_filter(parse_filter("attributes.status IN ('FINISHED', 'FAILED')")))
    runs.status IN (__[POSTCOMPILE_status_1])
    """
    if isinstance(node, And):
        return sa.and_(*(compile_filter(item) for item in node.items))
    if isinstance(node, Or):
        return sa.or_(*(compile_filter(item) for item in node.items))
    return _comparison(node)


def compile_order_by(
    query: sa.Select[Any], keys: Sequence[OrderKey]
) -> tuple[sa.Select[Any], list[sa.ColumnElement[Any]]]:
    """Join what ``keys`` sort on into ``query``; return it with the ORDER BY clauses.

    The clauses end with the tie-breakers that make pagination stable.

    >>> from loopline.tracking.search.parser import parse_order_by
    >>> _, clauses = compile_order_by(sa.select(runs), parse_order_by(["end_time"]))
    >>> [str(c) for c in clauses]
    ['runs.end_time ASC NULLS LAST', 'runs.start_time DESC', 'runs.id ASC']
    """
    clauses: list[sa.ColumnElement[Any]] = []
    for index, key in enumerate(keys):
        column: sa.ColumnElement[Any]
        if key.entity == "attribute":
            column = runs.c[ATTRIBUTES[key.key].column]
            nullable = bool(runs.c[ATTRIBUTES[key.key].column].nullable)
        else:
            # One alias per key; LEFT OUTER so runs without the key stay in the result.
            joined = _TABLES[key.entity].alias(f"order_{index}")
            query = query.outerjoin(
                joined, sa.and_(joined.c.run_id == runs.c.id, joined.c.key == key.key)
            )
            column, nullable = joined.c.value, True
        if isinstance(column.type, sa.String):
            column = Bytewise(column)
        clause = column.asc() if key.ascending else column.desc()
        clauses.append(clause.nulls_last() if nullable else clause)
    named = {(key.entity, key.key) for key in keys}
    if ("attribute", "start_time") not in named:
        clauses.append(runs.c.start_time.desc())
    if ("attribute", "run_id") not in named:
        clauses.append(Bytewise(runs.c.id).asc())
    return query, clauses


def _comparison(comparison: Comparison) -> sa.ColumnElement[bool]:
    op, value = comparison.op, comparison.value
    if comparison.entity == "attribute":
        return _compare(runs.c[ATTRIBUTES[comparison.key].column], op, value)
    table = _TABLES[comparison.entity]
    if op == "IS NULL":
        # NOT EXISTS: a primary-key probe per run on SQLite, an anti-join on PostgreSQL.
        return ~sa.exists().where(table.c.run_id == runs.c.id, table.c.key == comparison.key)
    having_key = table.c.key == comparison.key
    if op == "IS NOT NULL":
        return runs.c.id.in_(sa.select(table.c.run_id).where(having_key))
    matches = _compare(table.c.value, op, value)
    if comparison.entity == "metric" and op == "!=":
        # A stored NaN (NULL) differs from every number, as NaN does in MLflow.
        matches = sa.or_(matches, table.c.value.is_(None))
    # A semi-join rather than a correlated EXISTS: SQLite runs an uncorrelated IN once,
    # through the (key, value) index, instead of probing every run of the experiment.
    return runs.c.id.in_(sa.select(table.c.run_id).where(having_key, matches))


def _compare(column: sa.ColumnElement[Any], op: str, value: Value) -> sa.ColumnElement[bool]:
    if op in ("IN", "NOT IN"):
        assert isinstance(value, tuple)
        return column.in_(value) if op == "IN" else column.not_in(value)
    if op == "LIKE":
        assert isinstance(value, str)
        return CaseSensitiveLike(column, value)
    if op == "ILIKE":
        return column.ilike(value, escape=ESCAPE)
    # Bind numbers with their own type: a float bound as BIGINT would be truncated.
    bound: sa.BindParameter[Any] = sa.bindparam(
        None, value, type_=sa.Double() if isinstance(value, float) else None
    )
    return cast("sa.ColumnElement[bool]", _OPERATORS[op](column, bound))
