"""MLflow's experiment search: ``filter`` and ``order_by`` over names, tags and times.

The grammar is MLflow's for experiments: comparisons joined by ``AND``::

    name = 'x'   name LIKE 'fraud-%'   tags.team != 'ml'   tags.`a b` ILIKE '%x%'
    creation_time > 1700000000000      last_update_time <= 1700000000000

>>> from loopline.tracking.entities import Experiment
>>> exps = [Experiment("1", "fraud-a", tags={"team": "ml"}), Experiment("2", "churn")]
>>> [e.name for e in filter_experiments(exps, "name LIKE 'fraud%' AND tags.team = 'ml'")]
['fraud-a']
>>> [e.name for e in sort_experiments(exps, ["name ASC"])]
['churn', 'fraud-a']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopline.errors import FilterSyntaxError, InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopline.tracking.entities import Experiment

__all__ = ["Clause", "filter_experiments", "parse_experiment_filter", "sort_experiments"]

_TOKENS = re.compile(
    r"""\s*(?:
      (?P<string>'[^']*'|"[^"]*")
    | (?P<quoted>`[^`]*`)
    | (?P<number>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<op><=|>=|!=|=|<|>)
    | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)
_STRING_FIELDS = {"name": "name"}
_TIME_FIELDS = {"creation_time": "creation_time", "last_update_time": "last_update_time"}
_ORDER_FIELDS = ("name", "experiment_id", "creation_time", "last_update_time")
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_HINT = "for example: name LIKE 'fraud-%' AND tags.team = 'ml' AND creation_time > 0"


@dataclass(frozen=True, slots=True)
class Clause:
    """``field op value``; ``field`` is ``name``, a time, or ``tag`` (then ``key`` names it)."""

    field: str
    op: str
    value: str | float
    key: str = ""

    def matches(self, exp: Experiment) -> bool:
        if self.field == "tag":
            found = exp.tags.get(self.key)
            return found is not None and _compare(found, self.op, self.value)
        if self.field == "name":
            return _compare(exp.name, self.op, self.value)
        actual = exp.creation_time if self.field == "creation_time" else exp.last_update_time
        return _compare(actual, self.op, self.value)


@dataclass(slots=True)
class _Token:
    kind: str
    text: str
    start: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        match = _TOKENS.match(text, pos)
        if match is None or match.lastgroup is None:
            start = len(text) - len(text[pos:].lstrip())
            raise FilterSyntaxError(
                f"unexpected character {text[start]!r}", text=text, position=start, hint=_HINT
            )
        tokens.append(
            _Token(match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup))
        )
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def parse_experiment_filter(text: str | None) -> list[Clause]:
    """The clauses of a filter (all must hold); an empty filter gives none."""
    if not text or not text.strip():
        return []
    tokens = _tokenize(text)
    clauses: list[Clause] = []
    i = 0
    while True:
        clause, i = _clause(text, tokens, i)
        clauses.append(clause)
        token = tokens[i]
        if token.kind == "end":
            return clauses
        if token.kind != "word" or token.text.upper() != "AND":
            raise FilterSyntaxError(
                f"expected AND, found {token.text!r}", text=text, position=token.start, hint=_HINT
            )
        i += 1


def _clause(text: str, tokens: list[_Token], i: int) -> tuple[Clause, int]:
    def fail(message: str, token: _Token) -> FilterSyntaxError:
        return FilterSyntaxError(message, text=text, position=token.start, hint=_HINT)

    head = tokens[i]
    if head.kind != "word":
        raise fail(f"expected a key, found {head.text or 'the end'!r}", head)
    prefix, dot, rest = head.text.partition(".")
    i += 1
    if dot and prefix.lower() in ("tag", "tags"):
        key = rest
        if not key and tokens[i].kind in ("quoted", "string"):
            key, i = tokens[i].text[1:-1], i + 1
        if not key:
            raise fail("expected a tag name after 'tags.'", tokens[i])
        field = "tag"
    else:
        name = rest if dot and prefix.lower() in ("attribute", "attributes") else head.text
        key = ""
        field = _STRING_FIELDS.get(name) or _TIME_FIELDS.get(name) or ""
        if not field:
            raise InvalidArgumentError(
                f"invalid experiment search key {head.text!r}",
                hint="search experiments by name, tags.<key>, creation_time or last_update_time",
            )
    op_token = tokens[i]
    op = op_token.text.upper() if op_token.kind in ("op", "word") else ""
    value_token = tokens[i + 1] if op_token.kind != "end" else op_token
    numeric = field in _TIME_FIELDS
    allowed = _NUMBER_OPS if numeric else _STRING_OPS
    if op not in allowed:
        shown = ", ".join(sorted(allowed))
        raise fail(f"expected one of {shown} after {head.text!r}", op_token)
    if numeric and value_token.kind == "number":
        return Clause(field, op, float(value_token.text), key), i + 2
    if not numeric and value_token.kind == "string":
        return Clause(field, op, value_token.text[1:-1], key), i + 2
    wanted = "a number" if numeric else "a quoted string"
    raise fail(f"{head.text} compares with {wanted}", value_token)


def _compare(actual: str | float, op: str, expected: str | float) -> bool:
    if op in ("LIKE", "ILIKE"):
        return _like(str(expected), op == "ILIKE").fullmatch(str(actual)) is not None
    checks: dict[str, Callable[[str | float, str | float], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: float(a) < float(b),
        "<=": lambda a, b: float(a) <= float(b),
        ">": lambda a, b: float(a) > float(b),
        ">=": lambda a, b: float(a) >= float(b),
    }
    return checks[op](actual, expected)


def _like(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def filter_experiments(experiments: list[Experiment], text: str | None) -> list[Experiment]:
    clauses = parse_experiment_filter(text)
    return [e for e in experiments if all(c.matches(e) for c in clauses)]


def sort_experiments(experiments: list[Experiment], order_by: list[str] | None) -> list[Experiment]:
    """Sort as MLflow does: by default newest first, ties broken by id."""
    keys = [_order_key(item) for item in order_by or ["creation_time DESC", "experiment_id ASC"]]
    if not any(field == "experiment_id" for field, _ in keys):
        keys.append(("experiment_id", True))
    ordered = list(experiments)
    for field, ascending in reversed(keys):
        ordered.sort(key=_sort_value(field), reverse=not ascending)
    return ordered


def _order_key(item: str) -> tuple[str, bool]:
    words = item.split()
    if not 1 <= len(words) <= 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
        raise InvalidArgumentError(f"invalid order_by {item!r}", hint="write `<key> [ASC|DESC]`")
    prefix, dot, rest = words[0].partition(".")
    field = rest if dot and prefix.lower() in ("attribute", "attributes") else words[0]
    if field not in _ORDER_FIELDS:
        raise InvalidArgumentError(
            f"invalid order_by key {words[0]!r}", hint=f"order by one of {', '.join(_ORDER_FIELDS)}"
        )
    return field, len(words) == 1 or words[1].upper() == "ASC"


def _sort_value(field: str) -> Callable[[Experiment], str | int]:
    if field == "name":
        return lambda e: e.name
    if field == "experiment_id":
        return lambda e: int(e.experiment_id) if e.experiment_id.isdigit() else -1
    if field == "creation_time":
        return lambda e: e.creation_time
    return lambda e: e.last_update_time
