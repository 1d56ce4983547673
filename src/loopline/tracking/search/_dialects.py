"""Constructs that mean the same on SQLite and PostgreSQL, rendered per dialect.

Case-sensitive LIKE: PostgreSQL's LIKE is case-sensitive, SQLite's is not (for ASCII
letters), and the ``case_sensitive_like`` pragma would change every query on the
shared connection. So on SQLite a LIKE pattern is translated to the equivalent GLOB
pattern, which is case-sensitive. Both patterns are bound parameters computed in
Python from the user's pattern; each dialect renders only the one it needs.
Patterns use ``%`` and ``_`` as wildcards and a backslash as the escape character
on both backends (``'50\\%'`` matches the text ``50%``).

Bytewise order: SQLite sorts text by code point, PostgreSQL by the database's
collation (``en_US`` puts ``vision`` before ``Vision``). Sorting with ``COLLATE "C"``
on PostgreSQL gives both backends the same order, and so the same pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

if TYPE_CHECKING:
    from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["ESCAPE", "Bytewise", "CaseSensitiveLike", "like_to_glob"]

ESCAPE = "\\"
# GLOB has no escape character: its special characters match themselves in brackets.
_GLOB_LITERALS = {"*": "[*]", "?": "[?]", "[": "[[]"}


def like_to_glob(pattern: str) -> str:
    """The GLOB pattern matching exactly what the LIKE ``pattern`` matches, case-sensitively.

    >>> like_to_glob("run_%"), like_to_glob("50\\\\%*"), like_to_glob("a\\\\_[b]")
    ('run?*', '50%[*]', 'a_[[]b]')
    """
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == ESCAPE:
            char = next(chars, ESCAPE)
            out.append(_GLOB_LITERALS.get(char, char))
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_GLOB_LITERALS.get(char, char))
    return "".join(out)


class CaseSensitiveLike(sa.ColumnElement[bool]):
    """``column LIKE pattern ESCAPE '\\'``, rendered as GLOB on SQLite."""

    type = sa.Boolean()
    # Makes the construct cacheable: the cache key covers the column and both
    # parameters, whose values are extracted per execution like any bound value.
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
        ("glob", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: sa.ColumnElement[str], pattern: str) -> None:
        self.column = column
        self.pattern = sa.bindparam(None, pattern, type_=sa.String())
        self.glob = sa.bindparam(None, like_to_glob(pattern), type_=sa.String())


@compiles(CaseSensitiveLike)
def _compile_like(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.like(element.pattern, escape=ESCAPE), **kw)


@compiles(CaseSensitiveLike, "sqlite")
def _compile_glob(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} GLOB {compiler.process(element.glob, **kw)}"


class Bytewise(sa.ColumnElement[Any]):
    """``column``, sorted by code point rather than by the database's collation."""

    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: sa.ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(Bytewise)
def _compile_bytewise(element: Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(Bytewise, "postgresql")
def _compile_collate_c(element: Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return f'{compiler.process(element.column, **kw)} COLLATE "C"'
