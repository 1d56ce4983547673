"""What may be searched: entity prefixes, run attributes, and which operators and
values go with each.

The parser checks every comparison against these rules as soon as it has read it,
so the compiler only ever sees comparisons that make sense. The rules follow
MLflow's, widened where loopline accepts more (see the package docstring).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from loopline.errors import InvalidArgumentError

__all__ = [
    "ATTRIBUTES",
    "ENTITY_ALIASES",
    "Attribute",
    "Entity",
    "Value",
    "attribute_name",
    "check_comparison",
    "display_key",
]

Entity = Literal["metric", "param", "tag", "attribute"]
Scalar = str | int | float
Value = Scalar | tuple[Scalar, ...] | None

ENTITY_ALIASES: dict[str, Entity] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_PREFIX: dict[Entity, str] = {
    "metric": "metrics",
    "param": "params",
    "tag": "tags",
    "attribute": "attributes",
}


@dataclass(frozen=True, slots=True)
class Attribute:
    """A searchable run attribute: its column in ``runs`` and how it compares."""

    column: str
    kind: Literal["string", "number", "id"]


ATTRIBUTES: dict[str, Attribute] = {
    "artifact_uri": Attribute("artifact_uri", "string"),
    "end_time": Attribute("end_time", "number"),
    "experiment_id": Attribute("experiment_id", "id"),
    "lifecycle_stage": Attribute("lifecycle_stage", "string"),
    "run_id": Attribute("id", "string"),
    "run_name": Attribute("name", "string"),
    "start_time": Attribute("start_time", "number"),
    "status": Attribute("status", "string"),
    "user_id": Attribute("user", "string"),
}
# MLflow's alternate spellings (its UI writes `Run Name` and `Created`).
_ATTRIBUTE_ALIASES = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
    "runName": "run_name",
}

NUMERIC_OPS = frozenset({"=", "!=", ">", ">=", "<", "<="})
STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
KEY_VALUE_OPS = STRING_OPS | {"IS NULL", "IS NOT NULL"}
ID_OPS = frozenset({"=", "!=", "IN", "NOT IN"})
_MAX_INT = 2**63 - 1
# Builds the error for the clause at hand from a reason and a hint.
_Fail = Callable[[str, str], InvalidArgumentError]


def attribute_name(key: str) -> str | None:
    """The canonical name of a run attribute or alias, ``None`` when unknown.

    >>> attribute_name("created"), attribute_name("status"), attribute_name("auc")
    ('start_time', 'status', None)
    """
    key = _ATTRIBUTE_ALIASES.get(key, key)
    return key if key in ATTRIBUTES else None


def display_key(entity: Entity, key: str) -> str:
    """``key`` as it would be written in a filter, quoted when it needs to be.

    >>> display_key("metric", "auc"), display_key("tag", "my tag")
    ('metrics.auc', 'tags.`my tag`')
    """
    plain = key and (key[0].isalpha() or key[0] == "_")
    plain = plain and all(c.isalnum() or c in "_." for c in key) and not key.endswith(".")
    shown = key if plain else "`" + key.replace("`", "``") + "`"
    return f"{_PREFIX[entity]}.{shown}"


def check_comparison(
    entity: Entity, key: str, op: str, value: Value, *, clause: str
) -> tuple[str, Value]:
    """Validate one comparison; return its canonical key and value.

    Raises :class:`InvalidArgumentError` naming ``clause`` when the comparison is
    well formed but meaningless, such as a metric compared with a string.

    >>> check_comparison("attribute", "created", ">", 5, clause="created > 5")
    ('start_time', 5)
    """

    def fail(reason: str, hint: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"invalid clause `{clause}`: {reason}", hint=hint)

    if entity == "metric":
        _check_op(op, NUMERIC_OPS, "metrics", fail)
        return key, float(_number(value, "metrics", display_key(entity, key), fail))
    if entity in ("param", "tag"):
        what = _PREFIX[entity]
        _check_op(op, KEY_VALUE_OPS, what, fail)
        return key, _strings(value, what, display_key(entity, key), op, fail)
    name = attribute_name(key)
    if name is None:
        valid = ", ".join(sorted(ATTRIBUTES))
        raise fail(f"unknown attribute {key!r}", f"attributes are {valid}")
    kind = ATTRIBUTES[name].kind
    what, shown = f"attribute {name}", display_key("attribute", name)
    if kind == "number":
        _check_op(op, NUMERIC_OPS, what, fail)
        return name, _number(value, what, shown, fail)
    if kind == "id":
        _check_op(op, ID_OPS, what, fail)
        return name, _ids(value, fail)
    _check_op(op, STRING_OPS, what, fail)
    return name, _strings(value, what, shown, op, fail)


def _check_op(op: str, allowed: frozenset[str], what: str, fail: _Fail) -> None:
    if op not in allowed:
        ops = ", ".join(sorted(allowed))
        raise fail(f"{op} does not apply to {what}", f"{what} compare with {ops}")


def _number(value: Value, what: str, shown: str, fail: _Fail) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"{what} compare with numbers, not {value!r}", f"for example {shown} > 0.5")
    if isinstance(value, float) and math.isnan(value):
        raise fail("nothing compares with NaN", "NaN values never match a comparison")
    if isinstance(value, int) and abs(value) > _MAX_INT:
        raise fail("the number is too large", "numbers must fit in 64 bits")
    return value


def _strings(value: Value, what: str, shown: str, op: str, fail: _Fail) -> Value:
    if op in ("IS NULL", "IS NOT NULL"):
        return None
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not isinstance(item, str):
            raise fail(
                f"{what} compare with quoted strings, not {item!r}",
                f"quote the value: {shown} = '{item}'",
            )
    if op in ("LIKE", "ILIKE") and isinstance(value, str) and _ends_with_escape(value):
        raise fail(
            "the pattern ends with a lone backslash (LIKE's escape character)",
            r"match a backslash with four in the filter: LIKE 'a\\\\'",
        )
    return value


def _ends_with_escape(pattern: str) -> bool:
    # A backslash escapes the next character in LIKE patterns; count the run at the end.
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def _ids(value: Value, fail: _Fail) -> Value:
    items = value if isinstance(value, tuple) else (value,)
    ids: list[int] = []
    for item in items:
        if isinstance(item, str) and item.isascii() and item.isdigit():
            item = int(item)
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= _MAX_INT:
            ids.append(item)
        else:
            raise fail(f"{item!r} is not an experiment id", "experiment ids are integers: '0'")
    return tuple(ids) if isinstance(value, tuple) else ids[0]
