"""References to versioned objects: ``NAME``, ``NAME@3``, ``NAME@latest``, ``NAME@<tag>``,
``NAME@sha:<prefix>``.

The convention is shared by every capability (datasets now, registered models
later), so nothing here knows about datasets: :func:`parse_ref` splits a reference
into the object's name and a :class:`Ref` saying how to pick one of its versions.

>>> parse_ref("wine@3")
Ref(name='wine', kind='version', value='3')
>>> parse_ref("wine")
Ref(name='wine', kind='latest', value='')
>>> parse_ref("wine@prod").kind, parse_ref("wine@sha:9f3a").value
('tag', '9f3a')
>>> str(parse_ref("wine@SHA:9F3A"))
'wine@sha:9f3a'
>>> parse_ref("1234")
Traceback (most recent call last):
...
loopline.errors.InvalidArgumentError: invalid name '1234': a name may not be all digits (a number after '@' is a version: use letters too, e.g. 'ds-1234')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from loopline.errors import InvalidArgumentError

__all__ = [
    "DIGEST_PREFIX_MIN",
    "NAME_MAX",
    "Ref",
    "RefKind",
    "check_name",
    "check_tag",
    "parse_ref",
]

RefKind = Literal["latest", "version", "tag", "digest"]

NAME_MAX = 256
DIGEST_PREFIX_MIN = 4
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HEX = re.compile(r"^[0-9a-f]+$")
_RESERVED_TAGS = frozenset({"latest"})


def check_name(name: str, what: str = "name") -> str:
    """Validate the name of a versioned object; returns it unchanged.

    Letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at
    most 256 characters, and not all digits (``NAME@3`` would be ambiguous).

    >>> check_name("wine-quality_v2.1")
    'wine-quality_v2.1'
    >>> check_name("my data")
    Traceback (most recent call last):
    ...
    loopline.errors.InvalidArgumentError: invalid name 'my data' (use letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. 'my-data'))
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > NAME_MAX:
        raise InvalidArgumentError(
            f"invalid {what} {name[:40]!r}...: {len(name)} characters, the limit is {NAME_MAX}"
        )
    if not _NAME.match(name):
        suggestion = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._") or "data"
        raise InvalidArgumentError(
            f"invalid {what} {name!r}",
            hint=(
                "use letters, digits, '.', '_' and '-', starting with a letter or digit "
                f"(e.g. {suggestion!r})"
            ),
        )
    if name.isdigit():
        raise InvalidArgumentError(
            f"invalid {what} {name!r}: a {what} may not be all digits",
            hint=f"a number after '@' is a version: use letters too, e.g. 'ds-{name}'",
        )
    return name


def check_tag(tag: str) -> str:
    """Validate a tag (alias) name: a name that is neither ``latest`` nor ``sha:...``.

    >>> check_tag("prod")
    'prod'
    >>> check_tag("latest")
    Traceback (most recent call last):
    ...
    loopline.errors.InvalidArgumentError: tag 'latest' is reserved (it always means the newest version; choose another tag)
    """
    if tag in _RESERVED_TAGS:
        raise InvalidArgumentError(
            f"tag {tag!r} is reserved",
            hint="it always means the newest version; choose another tag",
        )
    return check_name(tag, "tag")


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference: which object (``name``) and which of its versions.

    ``kind`` is ``latest`` (``value`` empty), ``version`` (``value`` a positive
    integer as text), ``tag`` (``value`` the tag) or ``digest`` (``value`` a
    lowercase hex prefix of the content digest).
    """

    name: str
    kind: RefKind
    value: str

    @property
    def version(self) -> int:
        """The version number of a ``version`` reference."""
        if self.kind != "version":
            raise InvalidArgumentError(f"{self} does not name a version number")
        return int(self.value)

    def __str__(self) -> str:
        if self.kind == "latest":
            return self.name
        if self.kind == "digest":
            return f"{self.name}@sha:{self.value}"
        return f"{self.name}@{self.value}"


def parse_ref(text: str, *, what: str = "name") -> Ref:
    """Split ``NAME[@REF]``; a missing ``@REF`` means the latest version."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(
            "empty reference", hint="write NAME, NAME@3, NAME@latest, NAME@TAG or NAME@sha:PREFIX"
        )
    name, sep, ref = text.strip().partition("@")
    check_name(name, what)
    if sep and not ref:
        raise _bad(text, "nothing after '@'")
    if not sep or ref == "latest":
        return Ref(name, "latest", "")
    if ref.isdigit():
        if int(ref) < 1:
            raise _bad(text, "versions start at 1")
        return Ref(name, "version", str(int(ref)))
    if ref[:4].lower() == "sha:":
        prefix = ref[4:].lower()
        if prefix.startswith("blake3:"):
            prefix = prefix[len("blake3:") :]
        if len(prefix) < DIGEST_PREFIX_MIN or not _HEX.match(prefix):
            raise _bad(
                text, f"a digest prefix is at least {DIGEST_PREFIX_MIN} hexadecimal characters"
            )
        return Ref(name, "digest", prefix)
    if "@" in ref:
        raise _bad(text, "more than one '@'")
    try:
        check_name(ref, "tag")
    except InvalidArgumentError as exc:
        raise _bad(text, exc.message) from None
    return Ref(name, "tag", ref)


def _bad(text: str, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"invalid reference {text!r}: {why}",
        hint="write NAME, NAME@3, NAME@latest, NAME@TAG or NAME@sha:PREFIX",
    )
