"""The model format's errors, re-exported from loopline's one error tree.

::

    InvalidArgumentError
    └── SignatureError          input that does not match the model's signature
    PermissionDeniedError
    └── UntrustedModelError     loading would run code the model's author chose (pickle),
                                or deserialise types nobody vouched for (skops)

Both live in :mod:`loopline.errors`. A file whose digest does not match is
:class:`loopline.errors.IntegrityError`; a flavor whose library is missing is
:class:`loopline.errors.MissingDependencyError`.

>>> SignatureError.__module__
'loopline.errors'
"""

from __future__ import annotations

from loopline.errors import SignatureError, UntrustedModelError

__all__ = ["SignatureError", "UntrustedModelError"]
