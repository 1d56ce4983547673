"""Step outputs as content-addressed blobs: pandas -> Parquet, numpy -> .npy, models ->
loopline's model format, JSON-able values -> JSON, anything else only when pickling
was allowed.

A stored output is a small JSON reference ``{"kind", "digest", "size"}`` (a model
adds ``files``, its folder's path -> digest); references travel between processes,
values never pass through the driver.

>>> import tempfile
>>> from loopline.store.blobs import open_blob_store
>>> blobs = open_blob_store(tempfile.mkdtemp())
>>> ref = store_value(blobs, {"auc": 0.9}, step="evaluate")
>>> ref["kind"], load_value(blobs, ref)
('json', {'auc': 0.9})
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from loopline.pipelines._errors import PipelineDefinitionError
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from loopline.store.blobs import BlobStore

__all__ = ["artifact_files", "load_value", "ref_digest", "store_value"]

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_SORT_KEYS
_PICKLE_PROTOCOL = 5


def _is_json(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if depth > 64:
        return False
    if isinstance(value, list | tuple):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _kind(value: Any) -> str | None:
    module = type(value).__module__.split(".")[0]
    name = type(value).__name__
    if module == "pandas" and name == "DataFrame":
        return "parquet"
    if module == "pandas" and name == "Series":
        return "parquet-series"
    if module == "numpy" and name == "ndarray":
        return "npy"
    if _is_json(value):
        return "json"
    if callable(getattr(value, "predict", None)) or module == "torch":
        return "model"
    return None


def store_value(
    blobs: BlobStore, value: Any, *, step: str, allow_pickle: bool = False
) -> dict[str, Any]:
    """Store ``value``; its reference. ``step`` names the producer in error messages."""
    kind = _kind(value)
    try:
        if kind == "json":
            return _blob(blobs, "json", orjson.dumps(value, option=_JSON_OPTIONS))
        if kind in ("parquet", "parquet-series"):
            frame = value if kind == "parquet" else value.to_frame()
            buf = io.BytesIO()
            frame.to_parquet(buf)
            return _blob(blobs, kind, buf.getvalue())
        if kind == "npy":
            import numpy as np

            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=False)
            return _blob(blobs, "npy", buf.getvalue())
        if kind == "model":
            return _store_model(blobs, value)
    except (ValueError, TypeError) as exc:
        if not allow_pickle:
            raise PipelineDefinitionError(
                f"step {step} returns a {type(value).__name__} that cannot be stored as "
                f"{kind}: {exc}",
                hint="return plain data, or pass allow_pickle=True to @loopline.step",
            ) from exc
    if allow_pickle:
        import pickle

        return _blob(blobs, "pickle", pickle.dumps(value, protocol=_PICKLE_PROTOCOL))
    raise PipelineDefinitionError(
        f"step {step} returns a {type(value).__module__}.{type(value).__qualname__}, "
        "which no materializer stores (DataFrame, ndarray, model, JSON-able value)",
        hint="return one of those, or pass allow_pickle=True to @loopline.step "
        "(loading will unpickle it)",
    )


def _blob(blobs: BlobStore, kind: str, data: bytes) -> dict[str, Any]:
    digest = blobs.put_bytes(data)
    return {"kind": kind, "digest": str(digest), "size": len(data)}


def _store_model(blobs: BlobStore, value: Any) -> dict[str, Any]:
    from loopline.models.saving import save_model

    with tempfile.TemporaryDirectory(prefix="loopline-step-model-") as tmp:
        folder = Path(tmp) / "model"
        save_model(value, folder)
        files = {
            p.relative_to(folder).as_posix(): str(blobs.put_file(p))
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
    manifest = orjson.dumps(files, option=orjson.OPT_SORT_KEYS)
    digest = blobs.put_bytes(manifest)
    return {"kind": "model", "digest": str(digest), "size": len(manifest), "files": files}


def ref_digest(ref: dict[str, Any]) -> str:
    """The content digest that identifies a stored output (for cache keys)."""
    return str(ref["digest"])


def artifact_files(name: str, ref: dict[str, Any]) -> dict[str, str]:
    """Artifact path -> digest of a stored output, as a step's child run keeps it."""
    kind = ref["kind"]
    if kind == "model":
        return {f"outputs/{name}/{path}": d for path, d in ref["files"].items()}
    ext = {"json": "json", "npy": "npy", "pickle": "pkl"}.get(kind, "parquet")
    return {f"outputs/{name}.{ext}": ref["digest"]}


def exists(blobs: BlobStore, ref: dict[str, Any]) -> bool:
    """True when every blob of the output is still stored (a cache hit is usable)."""
    digests = [ref["digest"], *ref.get("files", {}).values()]
    return not blobs.missing(Digest.parse(d) for d in digests)


def load_value(blobs: BlobStore, ref: dict[str, Any], *, cache_dir: Path | None = None) -> Any:
    """The value a reference names; blobs are verified against their digests."""
    kind = ref["kind"]
    if kind == "model":
        return _load_model(blobs, ref, cache_dir)
    data = blobs.get_bytes(Digest.parse(ref["digest"]))
    if kind == "json":
        return orjson.loads(data)
    if kind in ("parquet", "parquet-series"):
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(data))
        return frame if kind == "parquet" else frame.iloc[:, 0]
    if kind == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if kind == "pickle":
        import pickle

        # Stored by a step that opted in with allow_pickle=True in this store.
        return pickle.loads(data)
    raise PipelineDefinitionError(f"unknown stored output kind {kind!r}")


def _load_model(blobs: BlobStore, ref: dict[str, Any], cache_dir: Path | None) -> Any:
    from loopline.models.loading import load_dir

    base = cache_dir or Path(tempfile.gettempdir()) / "loopline-step-models"
    folder = base / Digest.parse(ref["digest"]).hex
    if not folder.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=_mkdir(base)))
        for path, digest in ref["files"].items():
            dest = tmp / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            blobs.get_file(Digest.parse(digest), dest)
        try:
            tmp.rename(folder)
        except OSError:  # another process put it there first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return load_dir(folder, verified=True).raw


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
