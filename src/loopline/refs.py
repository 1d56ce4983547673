"""References and URIs shared by every capability.

* ``NAME`` or ``NAME@latest``: the newest version;
* ``NAME@<integer>``: a version number;
* ``NAME@sha:<hex prefix>``: a content digest prefix;
* ``NAME@<name>``: an alias (models) or tag (datasets).

Names may not be all digits (so ``NAME@3`` is never ambiguous) and use letters,
digits, ``_ - .`` and ``/`` inside.

URIs: ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
``models:/<name>@<alias>`` and MLflow 3's ``models:/m-<id>`` (a logged model).

>>> parse_ref("churn@3")
Ref(name='churn', kind='version', value='3')
>>> parse_ref("churn@champion").kind
'alias'
>>> parse_ref("wine@sha:ab12").value
'ab12'
>>> parse_model_uri("models:/churn@champion")
ModelUri(kind='registered', name='churn', ref=Ref(name='churn', kind='alias', value='champion'), run_id=None, path='')
>>> parse_model_uri("runs:/0123456789abcdef0123456789abcdef/model").path
'model'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from loopline.errors import InvalidArgumentError

__all__ = ["ModelUri", "Ref", "RefKind", "check_name", "parse_model_uri", "parse_ref"]

RefKind = Literal["latest", "version", "digest", "alias"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,255}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,255}$")
_HEX = re.compile(r"^[0-9a-f]{4,64}$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def check_name(name: str, what: str = "name") -> str:
    """Validate an object name; raise a clear error naming the rule it breaks.

    >>> check_name("wine-quality")
    'wine-quality'
    """
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith("/") or "//" in name:
        raise InvalidArgumentError(
            f"invalid {what} {name!r}",
            hint="use letters, digits, '_', '-', '.' and '/' (not first), at most 256 characters",
        )
    if name.isdigit():
        raise InvalidArgumentError(
            f"invalid {what} {name!r}: names may not be all digits",
            hint="NAME@3 means version 3, so a name of digits would be ambiguous",
        )
    return name


def check_label(label: str, what: str = "alias") -> str:
    """Validate an alias or tag: it must not look like a version number."""
    if not isinstance(label, str) or not _LABEL.match(label) or label == "latest":
        raise InvalidArgumentError(
            f"invalid {what} {label!r}",
            hint="start with a letter or '_', then letters, digits, '_', '-', '.'; 'latest' is reserved",
        )
    return label


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed ``NAME@REF``."""

    name: str
    kind: RefKind
    value: str

    def __str__(self) -> str:
        if self.kind == "latest":
            return f"{self.name}@latest"
        if self.kind == "digest":
            return f"{self.name}@sha:{self.value}"
        return f"{self.name}@{self.value}"

    @property
    def version(self) -> int:
        if self.kind != "version":
            raise InvalidArgumentError(f"{self} does not name a version number")
        return int(self.value)


def parse_ref(text: str) -> Ref:
    """Parse ``NAME``, ``NAME@latest``, ``NAME@3``, ``NAME@sha:abc1``, ``NAME@alias``."""
    name, sep, ref = text.partition("@")
    check_name(name)
    if not sep or ref in ("", "latest"):
        return Ref(name, "latest", "latest")
    if ref.isdigit():
        if int(ref) < 1:
            raise InvalidArgumentError(f"version numbers start at 1, got {text!r}")
        return Ref(name, "version", str(int(ref)))
    if ref.startswith("sha:"):
        prefix = ref[4:].lower()
        if not _HEX.match(prefix):
            raise InvalidArgumentError(
                f"invalid digest prefix in {text!r}",
                hint="give at least 4 hex characters: NAME@sha:1a2b",
            )
        return Ref(name, "digest", prefix)
    check_label(ref, "alias or tag")
    return Ref(name, "alias", ref)


@dataclass(frozen=True, slots=True)
class ModelUri:
    """A parsed model location.

    ``kind`` is ``registered`` (models:/NAME/VERSION or models:/NAME@ALIAS),
    ``logged`` (models:/m-<id>), ``run`` (runs:/RUN_ID/PATH) or ``path`` (a local path).
    """

    kind: Literal["registered", "logged", "run", "path"]
    name: str = ""
    ref: Ref | None = None
    run_id: str | None = None
    path: str = ""


def parse_model_uri(uri: str) -> ModelUri:
    """Parse ``models:/...``, ``runs:/...`` or a local path."""
    if uri.startswith("models:/"):
        rest = uri[len("models:/") :].strip("/")
        if rest.startswith("m-") and "/" not in rest and "@" not in rest:
            return ModelUri("logged", name=rest)
        if "@" in rest:
            ref = parse_ref(rest)
            return ModelUri("registered", name=ref.name, ref=ref)
        name, _, version = rest.rpartition("/")
        if not name or not (version.isdigit() or version == "latest"):
            raise InvalidArgumentError(
                f"invalid model URI {uri!r}",
                hint="use models:/NAME/VERSION, models:/NAME@ALIAS or models:/m-<id>",
            )
        ref = parse_ref(f"{name}@{version}")
        return ModelUri("registered", name=ref.name, ref=ref)
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/") :].strip("/").partition("/")
        if not _RUN_ID.match(run_id):
            raise InvalidArgumentError(
                f"invalid run id in {uri!r}", hint="use runs:/<32 hex characters>/<path>"
            )
        return ModelUri("run", run_id=run_id, path=path)
    if "://" in uri or uri.startswith(("models:", "runs:")):
        raise InvalidArgumentError(
            f"unsupported model URI {uri!r}",
            hint="use models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH or a local path",
        )
    return ModelUri("path", path=uri)
