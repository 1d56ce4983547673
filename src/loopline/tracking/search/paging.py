"""Opaque page tokens for search results.

A token is the base64 of a small JSON object, ``{"offset": N}``, the same form as
MLflow's, so a token issued by either server reads the same.
"""

from __future__ import annotations

import base64
import binascii
import json

from loopline.errors import InvalidArgumentError

__all__ = ["decode_page_token", "encode_page_token"]

_MAX_OFFSET = 2**63 - 1  # what SQL's OFFSET takes


def encode_page_token(offset: int) -> str:
    """The token for the page starting at ``offset``.

    >>> encode_page_token(100)
    'eyJvZmZzZXQiOiAxMDB9'
    >>> decode_page_token(encode_page_token(100))
    100
    """
    if offset < 0:
        raise InvalidArgumentError(f"negative page offset {offset}")
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a token stands for; no token (or an empty one) is the first page.

    >>> decode_page_token(None), decode_page_token("")
    (0, 0)
    """
    if not token:
        return 0
    try:
        data = json.loads(base64.b64decode(token.encode(), validate=True))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise _invalid(token) from exc
    offset = data.get("offset") if isinstance(data, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= _MAX_OFFSET:
        raise _invalid(token)
    return offset


def _invalid(token: str) -> InvalidArgumentError:
    shown = token if len(token) <= 40 else token[:40] + "..."
    return InvalidArgumentError(
        f"invalid page token {shown!r}",
        hint="pass the next_page_token of the previous page unchanged, or none for the first",
    )
