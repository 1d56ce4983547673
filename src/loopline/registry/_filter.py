"""Search filters for registered models, versions and logged models.

MLflow's registry filters are conjunctions of simple comparisons::

    name LIKE 'churn%' AND tags.team = 'fraud'
    name = 'churn' AND version_number >= 3
    run_id IN ('ab12...', 'cd34...')

The parser yields :class:`Clause` items; each store compiles them against its own
columns, so an unknown key is refused with the keys it does know.

>>> parse_filter("name = 'churn' and tags.`team name` != 'x'")
[Clause(key='name', op='=', value='churn'), Clause(key='tags.team name', op='!=', value='x')]
>>> parse_filter("version_number IN (1, 2)")[0].value
(1, 2)
>>> parse_filter("name = AND x")
Traceback (most recent call last):
...
loopline.errors.FilterSyntaxError: expected a value at position 7:
name = AND x
       ^ (quote strings: name = 'churn')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from loopline.errors import FilterSyntaxError, InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Clause", "compile_clauses", "parse_filter", "parse_order_by"]

Value = str | int | float | tuple[str | int | float, ...]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<op>!=|<>|<=|>=|=|<|>)
      | (?P<punct>[(),])
      | (?P<key>[A-Za-z_]\w*(?:\.\w+)*(?:\.(?:`[^`]+`|"[^"]+"))?|`[^`]+`)
    )""",
    re.VERBOSE,
)
_WORD_OPS = {"LIKE", "ILIKE", "IN", "NOT", "AND"}


@dataclass(frozen=True, slots=True)
class Clause:
    key: str
    op: str
    value: Value


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            raise FilterSyntaxError(
                "unexpected character", text=text, position=start, hint="quote strings: 'x'"
            )
        kind = match.lastgroup or ""
        start = match.start(kind)
        out.append((kind, match.group(kind), start))
        pos = match.end()
    out.append(("end", "", len(text)))
    return out


def _literal(kind: str, raw: str) -> str | int | float:
    if kind == "number":
        return int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw)
    body = raw[1:-1]
    if raw[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


def _key(raw: str) -> str:
    prefix, _, rest = raw.partition(".")
    if raw.startswith("`"):
        return raw.strip("`")
    if rest.startswith(("`", '"')):
        return f"{prefix}.{rest[1:-1]}"
    return raw


def parse_filter(text: str | None) -> list[Clause]:
    """The clauses of a filter (AND only); an empty filter has none."""
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    clauses: list[Clause] = []
    i = 0

    def fail(message: str, at: int, hint: str | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(message, text=text, position=tokens[at][2], hint=hint)

    while True:
        kind, raw, _ = tokens[i]
        if kind != "key" or raw.upper() in _WORD_OPS:
            raise fail("expected a key", i, "e.g. name = 'churn' or tags.team = 'fraud'")
        key = _key(raw)
        i += 1
        kind, raw, _ = tokens[i]
        word = raw.upper() if kind == "key" else ""
        if kind == "op":
            op = "!=" if raw == "<>" else raw
        elif word in ("LIKE", "ILIKE", "IN"):
            op = word
        elif word == "NOT" and tokens[i + 1][1].upper() == "IN":
            op, i = "NOT IN", i + 1
        else:
            raise fail("expected an operator", i, "use =, !=, <, <=, >, >=, LIKE, ILIKE, IN")
        i += 1
        value: Value
        if op in ("IN", "NOT IN"):
            value, i = _values(tokens, i, fail)
        else:
            kind, raw, _ = tokens[i]
            if kind not in ("string", "number"):
                raise fail("expected a value", i, f"quote strings: {key} = 'churn'")
            value = _literal(kind, raw)
            i += 1
        clauses.append(Clause(key, op, value))
        kind, raw, _ = tokens[i]
        if kind == "end":
            return clauses
        if raw.upper() != "AND":
            raise fail("expected AND or the end of the filter", i)
        i += 1


def _values(
    tokens: list[tuple[str, str, int]], i: int, fail: Callable[..., FilterSyntaxError]
) -> tuple[tuple[str | int | float, ...], int]:
    if tokens[i][1] != "(":
        raise fail("expected '(' after IN", i, "e.g. name IN ('a', 'b')")
    i += 1
    items: list[str | int | float] = []
    while True:
        kind, raw, _ = tokens[i]
        if kind not in ("string", "number"):
            raise fail("expected a value", i)
        items.append(_literal(kind, raw))
        i += 1
        if tokens[i][1] == ")":
            return tuple(items), i + 1
        if tokens[i][1] != ",":
            raise fail("expected ',' or ')'", i)
        i += 1


def parse_order_by(items: list[str] | None, known: Mapping[str, Any]) -> list[Any]:
    """``["name ASC", "version_number DESC"]`` as SQL order clauses over ``known`` columns."""
    out: list[Any] = []
    for item in items or []:
        parts = item.strip().split()
        if not parts or len(parts) > 2:
            raise InvalidArgumentError(f"invalid order_by item {item!r}", hint="e.g. 'name ASC'")
        column = known.get(parts[0].strip("`").lower())
        if column is None:
            raise InvalidArgumentError(
                f"cannot order by {parts[0]!r}", hint=f"order by one of {', '.join(sorted(known))}"
            )
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise InvalidArgumentError(f"invalid order direction in {item!r}", hint="ASC or DESC")
        out.append(column.asc() if direction == "ASC" else column.desc())
    return out


def compare(column: Any, op: str, value: Value) -> sa.ColumnElement[bool]:
    """``column op value`` as SQL (bound parameters only)."""
    if op in ("IN", "NOT IN"):
        values = list(value) if isinstance(value, tuple) else [value]
        return column.in_(values) if op == "IN" else column.not_in(values)  # type: ignore[no-any-return]
    if isinstance(value, tuple):
        raise InvalidArgumentError(f"{op} takes one value, not a list")
    if op == "LIKE":
        return column.like(str(value))  # type: ignore[no-any-return]
    if op == "ILIKE":
        return sa.func.lower(column).like(str(value).lower())
    ops: dict[str, Callable[[Any, Any], Any]] = {
        "=": lambda c, v: c == v,
        "!=": lambda c, v: c != v,
        "<": lambda c, v: c < v,
        "<=": lambda c, v: c <= v,
        ">": lambda c, v: c > v,
        ">=": lambda c, v: c >= v,
    }
    return ops[op](column, value)  # type: ignore[no-any-return]


def compile_clauses(
    clauses: list[Clause],
    columns: Mapping[str, Any],
    tag_clause: Callable[[str, str, Value], sa.ColumnElement[bool]] | None,
    *,
    numeric: frozenset[str] = frozenset(),
) -> list[sa.ColumnElement[bool]]:
    """SQL for each clause; ``tags.<key>`` goes to ``tag_clause``, other keys to ``columns``."""
    out: list[sa.ColumnElement[bool]] = []
    for clause in clauses:
        key = clause.key
        prefix, _, rest = key.partition(".")
        if prefix.lower() in ("tags", "tag") and rest and tag_clause is not None:
            # A model without the tag differs from any value: negations are NOT EXISTS.
            if clause.op in ("!=", "NOT IN"):
                positive = "=" if clause.op == "!=" else "IN"
                out.append(sa.not_(tag_clause(rest, positive, clause.value)))
            else:
                out.append(tag_clause(rest, clause.op, clause.value))
            continue
        if prefix.lower() in ("attributes", "attribute") and rest:
            key = rest
        column = columns.get(key.lower())
        if column is None:
            known = sorted(columns) + (["tags.<key>"] if tag_clause is not None else [])
            raise InvalidArgumentError(
                f"cannot filter on {key!r}", hint=f"filter on {', '.join(known)}"
            )
        value = clause.value
        if key.lower() in numeric:
            value = _as_numbers(key, value)
        elif clause.op in ("<", "<=", ">", ">="):
            raise InvalidArgumentError(f"{key} compares with =, !=, LIKE, ILIKE or IN")
        out.append(compare(column, clause.op, value))
    return out


def _as_numbers(key: str, value: Value) -> Value:
    def one(v: str | int | float) -> int:
        try:
            return int(v)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{key} compares with integers, got {v!r}") from None

    if isinstance(value, tuple):
        return tuple(one(v) for v in value)
    return one(value)
