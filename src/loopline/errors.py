"""The one error tree of loopline.

Every error loopline raises on purpose is a :class:`LooplineError` carrying a
machine-readable ``code`` (MLflow's vocabulary, so the MLflow-compatible API can
pass it through unchanged), a ``message`` saying what went wrong and a ``hint``
saying what to do next. Only ``loopline.server`` turns codes into HTTP status
codes; only ``loopline.cli`` turns them into exit codes.

::

    LooplineError
    ├── NotFoundError               RESOURCE_DOES_NOT_EXIST
    ├── AlreadyExistsError          RESOURCE_ALREADY_EXISTS
    ├── InvalidArgumentError        INVALID_PARAMETER_VALUE
    │   ├── FilterSyntaxError       (carries the position of the error)
    │   ├── LimitExceededError      (a key, value or batch over its limit)
    │   ├── UnsafePathError         (``..``, absolute paths, NUL bytes)
    │   └── SignatureError          (model input that does not match the signature)
    ├── InvalidStateError           INVALID_STATE
    ├── UnauthenticatedError        UNAUTHENTICATED
    ├── PermissionDeniedError       PERMISSION_DENIED
    │   └── UntrustedModelError     (loading a model would need ``trusted=True``)
    ├── IntegrityError              DATA_LOSS (a blob whose content does not match its digest)
    ├── MissingDependencyError      FEATURE_DISABLED (names the extra to install)
    ├── StoreError                  INTERNAL_ERROR (the metadata or blob store failed)
    ├── TransportError              TEMPORARILY_UNAVAILABLE (the server could not be reached)
    └── CheckFailedError            CHECK_FAILED (a validation gate or check failed: exit code 3)

>>> err = NotFoundError("run 'abc' does not exist", hint="list runs with `loopline runs list`")
>>> err.code
'RESOURCE_DOES_NOT_EXIST'
>>> str(err)
"run 'abc' does not exist (list runs with `loopline runs list`)"
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExistsError",
    "CheckFailedError",
    "FilterSyntaxError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidStateError",
    "LimitExceededError",
    "LooplineError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "SignatureError",
    "StoreError",
    "TransportError",
    "UnauthenticatedError",
    "UnsafePathError",
    "UntrustedModelError",
    "error_from_code",
]


class LooplineError(Exception):
    """Base of every error loopline raises on purpose."""

    default_code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code or self.default_code

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        """The wire form, MLflow's ``{error_code, message}`` plus our ``hint``."""
        body: dict[str, Any] = {"error_code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body


class NotFoundError(LooplineError):
    default_code = "RESOURCE_DOES_NOT_EXIST"


class AlreadyExistsError(LooplineError):
    default_code = "RESOURCE_ALREADY_EXISTS"


class InvalidArgumentError(LooplineError):
    default_code = "INVALID_PARAMETER_VALUE"


class FilterSyntaxError(InvalidArgumentError):
    """A search filter that does not parse; ``position`` is the 0-based offset."""

    def __init__(self, message: str, *, text: str, position: int, hint: str | None = None) -> None:
        pointer = f"{text}\n{' ' * position}^"
        super().__init__(f"{message} at position {position}:\n{pointer}", hint=hint)
        self.text = text
        self.position = position


class LimitExceededError(InvalidArgumentError):
    pass


class UnsafePathError(InvalidArgumentError):
    pass


class SignatureError(InvalidArgumentError):
    """Model input that does not match the signature; names every offending column.

    >>> err = SignatureError(missing=["age"], extra=["id"], mistyped=[("income", "string", "float64")])
    >>> print(err.message)
    input does not match the model's signature: missing columns ['age']; unexpected columns ['id']; column 'income' is string, the model expects float64
    """

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


class InvalidStateError(LooplineError):
    default_code = "INVALID_STATE"


class UnauthenticatedError(LooplineError):
    default_code = "UNAUTHENTICATED"


class PermissionDeniedError(LooplineError):
    default_code = "PERMISSION_DENIED"


class UntrustedModelError(PermissionDeniedError):
    """Loading a model needs ``trusted=True``: pickled code (which runs on load), or
    skops types nobody recorded when the model was saved."""


class IntegrityError(LooplineError):
    default_code = "DATA_LOSS"


class MissingDependencyError(LooplineError):
    """An optional part is not installed; the hint gives the pip command."""

    default_code = "FEATURE_DISABLED"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed",
            hint=f"pip install 'loopline[{extra}]'",
        )
        self.package = package
        self.extra = extra


class StoreError(LooplineError):
    default_code = "INTERNAL_ERROR"


class TransportError(LooplineError):
    default_code = "TEMPORARILY_UNAVAILABLE"


class CheckFailedError(LooplineError):
    default_code = "CHECK_FAILED"


_BY_CODE: dict[str, type[LooplineError]] = {
    cls.default_code: cls
    for cls in (
        NotFoundError,
        AlreadyExistsError,
        InvalidArgumentError,
        InvalidStateError,
        UnauthenticatedError,
        PermissionDeniedError,
        IntegrityError,
        MissingDependencyError,
        TransportError,
        CheckFailedError,
    )
}


def error_from_code(code: str, message: str, hint: str | None = None) -> LooplineError:
    """Rebuild an error received over the wire into the matching class.

    >>> type(error_from_code("RESOURCE_DOES_NOT_EXIST", "gone")).__name__
    'NotFoundError'
    """
    cls = _BY_CODE.get(code, LooplineError)
    if cls is MissingDependencyError:
        return LooplineError(message, hint=hint, code=code)
    return cls(message, hint=hint, code=code)
