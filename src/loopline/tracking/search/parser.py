"""A recursive-descent parser for MLflow's run search filters and ``order_by`` keys.

The grammar, with keywords case-insensitive::

    filter     := or_expr END
    or_expr    := and_expr (OR and_expr)*          -- OR and ( ) are loopline extensions
    and_expr   := primary (AND primary)*
    primary    := "(" or_expr ")" | comparison
    comparison := key ( ("=" | "!=" | "<" | "<=" | ">" | ">=" | LIKE | ILIKE) value
                      | [NOT] IN "(" value ("," value)* ")"
                      | IS [NOT] NULL )
    key        := WORD                              -- metrics.auc, tags.mlflow.runName, status
                | WORD"." (`quoted` | "quoted")     -- metrics.`my metric`, tags."a b"
                | `quoted`                          -- a bare attribute: `Run Name`
    value      := 'string' | "string" | number      -- 1, -0.5, 1e-3, inf

A key without an entity prefix is a run attribute, as in MLflow (``status =
'FINISHED'``). Syntax errors raise :class:`FilterSyntaxError` pointing at the
offending token; comparisons that parse but make no sense (a metric against a
string, LIKE on a metric) raise :class:`InvalidArgumentError` naming the clause.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopline.errors import FilterSyntaxError, InvalidArgumentError
from loopline.tracking.search._fields import (
    ATTRIBUTES,
    ENTITY_ALIASES,
    Entity,
    Value,
    attribute_name,
    check_comparison,
    display_key,
)
from loopline.tracking.search._lexer import Token, tokenize

__all__ = ["And", "Comparison", "Node", "Or", "OrderKey", "parse_filter", "parse_order_by"]

_MAX_DEPTH = 32
_OPERATORS_HINT = "operators are =, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL"
_KEY_HINT = "prefix keys with metrics., params., tags. or attributes.: metrics.auc > 0.5"


@dataclass(frozen=True, slots=True)
class Comparison:
    """``<entity>.<key> <op> <value>``; ``value`` is a tuple for IN, ``None`` for IS NULL."""

    entity: Entity
    key: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class OrderKey:
    entity: Entity
    key: str
    ascending: bool = True


def parse_filter(text: str | None) -> Node | None:
    """Parse a search filter; an empty or missing filter gives ``None``.

    >>> parse_filter("metrics.auc > 0.5 and params.model = 'rf'")
    And(items=(Comparison(entity='metric', key='auc', op='>', value=0.5), \
Comparison(entity='param', key='model', op='=', value='rf')))
    """
    if text is None or not text.strip():
        return None
    parser = _Parser(text)
    node = parser.or_expr()
    token = parser.peek()
    if token.kind != "end":
        hint = "remove the unmatched ')'" if token.kind == ")" else "join conditions with AND"
        raise parser.error(f"unexpected {_describe(token)}", token, hint)
    return node


def parse_order_by(items: list[str] | None) -> list[OrderKey]:
    """Parse MLflow ``order_by`` strings: a key, then optionally ASC or DESC.

    >>> parse_order_by(["metrics.auc DESC", "tags.`x y` asc", "start_time"])
    [OrderKey(entity='metric', key='auc', ascending=False), \
OrderKey(entity='tag', key='x y', ascending=True), \
OrderKey(entity='attribute', key='start_time', ascending=True)]
    """
    keys: list[OrderKey] = []
    for item in items or ():
        parser = _Parser(item)
        entity, key = parser.key()
        ascending = True
        if parser.is_word(parser.peek(), "ASC", "DESC"):
            ascending = parser.advance().text.upper() == "ASC"
        token = parser.peek()
        if token.kind != "end":
            raise parser.error(f"unexpected {_describe(token)}", token, "write `<key> [ASC|DESC]`")
        if entity == "attribute":
            key = _order_attribute(key, item)
        order_key = OrderKey(entity, key, ascending)
        if any((k.entity, k.key) == (entity, key) for k in keys):
            raise InvalidArgumentError(
                f"order_by names {display_key(entity, key)} twice", hint="keep one of them"
            )
        keys.append(order_key)
    return keys


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    # -- token helpers ---------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    @staticmethod
    def is_word(token: Token, *words: str) -> bool:
        return token.kind == "word" and token.text.upper() in words

    def error(self, message: str, token: Token, hint: str | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(message, text=self.text, position=token.start, hint=hint)

    # -- grammar ---------------------------------------------------------------------
    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_word(self.peek(), "OR"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(_flatten(Or, items))

    def and_expr(self) -> Node:
        items = [self.primary()]
        while self.is_word(self.peek(), "AND"):
            self.advance()
            items.append(self.primary())
        return items[0] if len(items) == 1 else And(_flatten(And, items))

    def primary(self) -> Node:
        token = self.peek()
        if token.kind != "(":
            return self.comparison()
        if self.depth >= _MAX_DEPTH:
            raise self.error("parentheses nest too deep", token, f"nest at most {_MAX_DEPTH} deep")
        self.advance()
        self.depth += 1
        node = self.or_expr()
        self.depth -= 1
        closing = self.peek()
        if closing.kind != ")":
            raise self.error(
                f"expected ')', found {_describe(closing)}",
                closing,
                f"close the '(' at position {token.start}",
            )
        self.advance()
        return node

    def comparison(self) -> Comparison:
        start = self.peek().start
        entity, key = self.key()
        op, value = self.operation(entity, key)
        clause = self.text[start : self.tokens[self.index - 1].end]
        key, value = check_comparison(entity, key, op, value, clause=clause)
        return Comparison(entity, key, op, value)

    def key(self) -> tuple[Entity, str]:
        token = self.advance()
        if token.kind == "quoted":
            return self._bare_attribute(token)
        if token.kind != "word" or self.is_word(token, "AND", "OR", "NOT"):
            raise self.error(f"expected a key, found {_describe(token)}", token, _KEY_HINT)
        prefix, dot, rest = token.text.partition(".")
        if not dot:
            return self._bare_attribute(token)
        entity = ENTITY_ALIASES.get(prefix.lower())
        if entity is None:
            raise self.error(f"unknown entity {prefix!r}", token, _KEY_HINT)
        if rest:
            return entity, rest
        quoted = self.advance()
        if quoted.kind == "quoted" or (quoted.kind == "string" and quoted.quote == '"'):
            return entity, str(quoted.value)
        raise self.error(
            f"expected a key after {token.text!r}, found {_describe(quoted)}",
            quoted,
            f"quote keys with spaces or symbols in backticks: {prefix}.`my key`",
        )

    def _bare_attribute(self, token: Token) -> tuple[Entity, str]:
        name = attribute_name(str(token.value))
        if name is None:
            raise self.error(f"expected a key, found {_describe(token)}", token, _KEY_HINT)
        return "attribute", name

    def operation(self, entity: Entity, key: str) -> tuple[str, Value]:
        token = self.advance()
        if token.kind == "op":
            if token.text in ("==", "<>"):
                raise self.error(f"unknown operator {token.text!r}", token, "use = or !=")
            return token.text, self.value(entity, key)
        if self.is_word(token, "LIKE", "ILIKE"):
            return token.text.upper(), self.value(entity, key)
        if self.is_word(token, "IN"):
            return "IN", self.values(entity, key)
        if self.is_word(token, "NOT"):
            if not self.is_word(self.advance(), "IN"):
                raise self.error("expected IN after NOT", self.tokens[self.index - 1], "NOT IN")
            return "NOT IN", self.values(entity, key)
        if self.is_word(token, "IS"):
            negated = self.is_word(self.peek(), "NOT")
            if negated:
                self.advance()
            if not self.is_word(self.advance(), "NULL"):
                last = self.tokens[self.index - 1]
                raise self.error("expected NULL", last, "write IS NULL or IS NOT NULL")
            return ("IS NOT NULL" if negated else "IS NULL"), None
        raise self.error(f"expected an operator, found {_describe(token)}", token, _OPERATORS_HINT)

    def value(self, entity: Entity, key: str) -> str | int | float:
        token = self.advance()
        if token.kind in ("string", "number"):
            return token.value
        shown = display_key(entity, key)
        if token.kind == "word" and token.text.upper() == "NULL":
            hint = f"test for a missing key with {shown} IS NULL"
        elif token.kind == "word":
            hint = f"string values need quotes: {shown} = '{token.text}'"
        elif token.kind == "quoted":
            hint = f"backticks quote keys; quote values with ': {shown} = 'a'"
        elif token.kind == "(":
            hint = f"compare with a list using IN: {shown} IN ('a', 'b')"
        else:
            hint = f"for example {shown} = 'a' or {shown} > 0.5"
        raise self.error(f"expected a value, found {_describe(token)}", token, hint)

    def values(self, entity: Entity, key: str) -> tuple[str | int | float, ...]:
        opening = self.advance()
        if opening.kind != "(":
            raise self.error(
                f"expected '(', found {_describe(opening)}",
                opening,
                f"IN takes a list: {display_key(entity, key)} IN ('a', 'b')",
            )
        items = [self.value(entity, key)]
        while self.peek().kind == ",":
            self.advance()
            items.append(self.value(entity, key))
        closing = self.advance()
        if closing.kind != ")":
            raise self.error(
                f"expected ',' or ')', found {_describe(closing)}", closing, "separate values by ,"
            )
        return tuple(items)


def _order_attribute(key: str, item: str) -> str:
    name = attribute_name(key)
    if name is None:
        valid = ", ".join(sorted(ATTRIBUTES))
        raise InvalidArgumentError(
            f"invalid order_by `{item.strip()}`: unknown attribute {key!r}",
            hint=f"attributes are {valid}",
        )
    return name


def _flatten(cls: type[And] | type[Or], items: list[Node]) -> tuple[Node, ...]:
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return tuple(flat)


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    return repr(token.text)
