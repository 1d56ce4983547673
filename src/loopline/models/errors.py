"""Errors of the model format, all inside loopline's one error tree.

::

    InvalidArgumentError
    └── SignatureError          input that does not match the model's signature
    PermissionDeniedError
    └── UntrustedModelError     loading would run code the model's author chose (pickle),
                                or deserialise types nobody vouched for (skops)

A file whose digest does not match is :class:`loopline.errors.IntegrityError`; a flavor
whose library is missing is :class:`loopline.errors.MissingDependencyError`.

>>> err = SignatureError(missing=["age"], extra=["id"], mistyped=[("income", "string", "float64")])
>>> print(err.message)
input does not match the model's signature: missing columns ['age']; unexpected columns ['id']; column 'income' is string, the model expects float64
"""

from __future__ import annotations

from loopline.errors import InvalidArgumentError, PermissionDeniedError

__all__ = ["SignatureError", "UntrustedModelError"]


class SignatureError(InvalidArgumentError):
    """Model input that does not match the signature; names every offending column."""

    def __init__(
        self,
        *,
        missing: list[str] | None = None,
        extra: list[str] | None = None,
        mistyped: list[tuple[str, str, str]] | None = None,
        detail: str | None = None,
    ) -> None:
        self.missing = list(missing or [])
        self.extra = list(extra or [])
        self.mistyped = list(mistyped or [])
        parts: list[str] = []
        if self.missing:
            parts.append(f"missing columns {self.missing}")
        if self.extra:
            parts.append(f"unexpected columns {self.extra}")
        parts.extend(
            f"column {name!r} is {got}, the model expects {want}"
            for name, got, want in self.mistyped
        )
        if detail:
            parts.append(detail)
        super().__init__(
            "input does not match the model's signature: " + "; ".join(parts),
            hint="see the model's signature with `loopline.models.load(uri).signature`",
        )


class UntrustedModelError(PermissionDeniedError):
    """Loading needs ``trusted=True``: pickled code, or skops types nobody recorded."""
