"""What a version records from its model's own description file.

A loopline model directory carries ``loopline-model.yaml`` (flavor, signature, file
digests); a model saved by MLflow carries ``MLmodel``. At registration the registry
reads whichever is present among the copied files, so ``flavor`` and ``signature``
can be listed and searched without opening the model. The reading is lenient: a
file it cannot understand leaves both empty rather than refusing the registration.
What it does refuse is a file whose stored digest contradicts the digest the
description declares for it.

>>> meta = read_meta({"flavor": {"name": "sklearn"}, "signature": {"inputs": []}}, "loopline-model.yaml")
>>> meta.flavor, meta.signature
('sklearn', {'inputs': []})
>>> read_meta({"flavors": {"python_function": {}, "sklearn": {}}}, "MLmodel").flavor
'sklearn'
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.errors import IntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "LOOPLINE_MODEL_FILE",
    "MLMODEL_FILE",
    "ModelMeta",
    "check_digests",
    "load_meta",
    "read_meta",
]

LOOPLINE_MODEL_FILE = "loopline-model.yaml"
MLMODEL_FILE = "MLmodel"
_MAX_META_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class ModelMeta:
    flavor: str = ""
    signature: dict[str, Any] | None = None
    digests: dict[str, str] = field(default_factory=dict)


def _flavor(data: dict[str, Any]) -> str:
    flavor = data.get("flavor")
    if isinstance(flavor, dict):
        flavor = flavor.get("name") or flavor.get("type")
    if isinstance(flavor, str):
        return flavor[:64]
    flavors = data.get("flavors")
    if isinstance(flavors, dict) and flavors:
        names = [str(n) for n in flavors if n != "python_function"] or [str(next(iter(flavors)))]
        return names[0][:64]
    return ""


def _signature(data: dict[str, Any]) -> dict[str, Any] | None:
    signature = data.get("signature")
    if not isinstance(signature, dict):
        return None
    out: dict[str, Any] = {}
    for key, value in signature.items():
        if isinstance(value, str):  # MLflow keeps the column specs as JSON text
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        out[str(key)] = value
    return out


def _digests(data: dict[str, Any]) -> dict[str, str]:
    files = data.get("files")
    found: dict[str, str] = {}
    if isinstance(files, dict):
        items = [(k, v.get("digest") if isinstance(v, dict) else v) for k, v in files.items()]
    elif isinstance(files, list):
        items = [(f.get("path"), f.get("digest")) for f in files if isinstance(f, dict)]
    else:
        return found
    for path, digest in items:
        if isinstance(path, str) and isinstance(digest, str):
            found[path] = digest
    return found


def read_meta(data: Any, filename: str) -> ModelMeta:
    """The flavor, signature and declared digests in a parsed description file."""
    if not isinstance(data, dict):
        return ModelMeta()
    digests = _digests(data) if filename == LOOPLINE_MODEL_FILE else {}
    return ModelMeta(_flavor(data), _signature(data), digests)


def load_meta(files: dict[str, tuple[str, int]], read: Callable[[str], bytes]) -> ModelMeta:
    """Read the description among ``files`` (path -> (digest, size)); ``read(digest)`` gives bytes."""
    import yaml

    for name in (LOOPLINE_MODEL_FILE, MLMODEL_FILE):
        entry = files.get(name)
        if entry is None or entry[1] > _MAX_META_BYTES:
            continue
        try:
            data = yaml.load(read(entry[0]), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            return ModelMeta()
        return read_meta(data, name)
    return ModelMeta()


def check_digests(meta: ModelMeta, files: dict[str, tuple[str, int]], source: str) -> None:
    """Refuse files whose stored digest differs from the one the description declares.

    Only digests of the store's algorithm are compared; other algorithms are the
    model format's business (it verifies them when loading).
    """
    for path, declared in meta.digests.items():
        entry = files.get(path)
        if entry is None or not declared.startswith("blake3:"):
            continue
        if entry[0] != declared.lower():
            raise IntegrityError(
                f"model file {path!r} of {source} does not match its recorded digest "
                f"(stored {entry[0]}, {LOOPLINE_MODEL_FILE} says {declared})",
                hint="the model was changed after it was saved: log it again",
            )
