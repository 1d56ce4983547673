"""The tokenizer of the search filter language.

Tokens know where they start and end in the text so every error can point at the
character that caused it. Keywords (AND, LIKE, IS ...) are plain ``word`` tokens;
the parser tells them from keys by where they stand.

A word runs over letters, digits, ``_`` and ``.``, so ``tags.mlflow.runName`` is one
token that the parser splits at its first dot. A word ending in a dot
(``metrics.``) is followed by a quoted key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loopline.errors import FilterSyntaxError

__all__ = ["Token", "tokenize"]

Kind = Literal["word", "quoted", "string", "number", "op", "(", ")", ",", "end"]

_OPERATOR_CHARS = "=!<>"
_PUNCTUATION: dict[str, Kind] = {"(": "(", ")": ")", ",": ","}
# Accepted so the parser can reject them with a hint rather than a bare "unexpected".
_OPERATORS = ("<=", ">=", "!=", "==", "<>", "=", "<", ">")
_SPECIAL_NUMBERS = {"inf": float("inf"), "infinity": float("inf"), "nan": float("nan")}


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # the raw source text of the token
    value: str | int | float  # unquoted, unescaped or converted
    start: int
    end: int
    quote: str = ""  # the quote character of a ``string`` or ``quoted`` token


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token.

    >>> [t.value for t in tokenize("metrics.auc >= -1e-3")]
    ['metrics.auc', '>=', -0.001, '']
    """
    tokens: list[Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            tokens.append(Token("end", "", "", pos, pos))
            return tokens
        token = _next_token(text, pos)
        tokens.append(token)
        pos = token.end


def _next_token(text: str, pos: int) -> Token:
    char = text[pos]
    if char in "'\"`":
        return _quoted(text, pos)
    if char.isdigit() or char in "+-" or (char == "." and _digit_at(text, pos + 1)):
        return _number(text, pos)
    if char.isalpha() or char == "_":
        return _word(text, pos)
    if char in _PUNCTUATION:
        return Token(_PUNCTUATION[char], char, char, pos, pos + 1)
    if char in _OPERATOR_CHARS:
        for op in _OPERATORS:
            if text.startswith(op, pos):
                return Token("op", op, op, pos, pos + len(op))
    hint = None
    if char in "/:@":
        hint = "keys with special characters need backticks: metrics.`val-loss`"
    raise FilterSyntaxError(f"unexpected character {char!r}", text=text, position=pos, hint=hint)


def _digit_at(text: str, pos: int) -> bool:
    return pos < len(text) and text[pos].isdigit()


def _scan_word(text: str, pos: int) -> int:
    while pos < len(text) and (text[pos].isalnum() or text[pos] in "_."):
        pos += 1
    return pos


def _word(text: str, start: int) -> Token:
    end = _scan_word(text, start)
    word = text[start:end]
    special = _SPECIAL_NUMBERS.get(word.lower())
    if special is not None:
        return Token("number", word, special, start, end)
    return Token("word", word, word, start, end)


def _number(text: str, start: int) -> Token:
    pos = start
    if text[pos] in "+-":
        pos += 1
        if pos < len(text) and text[pos].isalpha():
            end = _scan_word(text, pos)
            special = _SPECIAL_NUMBERS.get(text[pos:end].lower())
            if special is not None:
                sign = -1.0 if text[start] == "-" else 1.0
                return Token("number", text[start:end], sign * special, start, end)
        if not (_digit_at(text, pos) or (text[pos : pos + 1] == "." and _digit_at(text, pos + 1))):
            raise FilterSyntaxError(
                f"unexpected character {text[start]!r}",
                text=text,
                position=start,
                hint="write a sign next to its number (-1); "
                "quote keys with special characters in backticks: metrics.`val-loss`",
            )
    is_float = False
    pos = _scan_digits(text, pos)
    if text[pos : pos + 1] == ".":
        is_float = True
        pos = _scan_digits(text, pos + 1)
    if text[pos : pos + 1] in ("e", "E"):
        exponent = pos + 1
        if text[exponent : exponent + 1] in ("+", "-"):
            exponent += 1
        if _digit_at(text, exponent):
            is_float = True
            pos = _scan_digits(text, exponent)
    if pos < len(text) and (text[pos].isalnum() or text[pos] in "_."):
        raise FilterSyntaxError(
            f"malformed number {text[start : _scan_word(text, pos)]!r}",
            text=text,
            position=start,
            hint="numbers look like 3, -0.5 or 1e-3; quote strings: '1abc'",
        )
    raw = text[start:pos]
    return Token("number", raw, float(raw) if is_float else int(raw), start, pos)


def _scan_digits(text: str, pos: int) -> int:
    while _digit_at(text, pos):
        pos += 1
    return pos


def _quoted(text: str, start: int) -> Token:
    """A string ('...' or "...") or a quoted key (`...`).

    The quote character is escaped by doubling it; a backslash escapes a quote or a
    backslash and is kept before any other character, so LIKE patterns such as
    ``'a\\_b'`` reach the database with their escape intact.
    """
    quote = text[start]
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and quote != "`" and pos + 1 < len(text):
            following = text[pos + 1]
            chars.append(following if following in "'\"\\" else char + following)
            pos += 2
        elif char == quote:
            if text[pos + 1 : pos + 2] == quote:
                chars.append(quote)
                pos += 2
            else:
                kind: Kind = "quoted" if quote == "`" else "string"
                return Token(kind, text[start : pos + 1], "".join(chars), start, pos + 1, quote)
        else:
            chars.append(char)
            pos += 1
    what = "key" if quote == "`" else "string"
    raise FilterSyntaxError(
        f"unterminated {what}",
        text=text,
        position=start,
        hint=f"close it with {quote}; write a {quote} inside as {quote}{quote}",
    )
