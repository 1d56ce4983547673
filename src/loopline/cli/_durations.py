"""Durations on the command line: ``30d``, ``12h``, ``15m``, ``90s``, ``2w``, ``0``."""

from __future__ import annotations

import re

import typer

__all__ = ["parse_duration_ms"]

_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration_ms(text: str, *, option: str) -> int:
    """Milliseconds in a duration; a usage error (exit code 2) when it does not parse.

    >>> parse_duration_ms("30d", option="--older-than"), parse_duration_ms("1.5h", option="x")
    (2592000000, 5400000)
    >>> parse_duration_ms("0", option="--grace")
    0
    """
    if text.strip() == "0":
        return 0
    match = _DURATION.match(text.lower())
    if match is None:
        raise typer.BadParameter(
            f"{text!r} is not a duration such as 90s, 15m, 12h, 30d or 2w", param_hint=option
        )
    return int(float(match.group(1)) * _UNITS_MS[match.group(2)])
