"""``load(uri)``: a model from a local folder, a run, or the registry.

* a local path: verified in place;
* ``runs:/<run_id>/<path>``: from the run's artifacts, through the cache;
* ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/m-<id>``:
  through :mod:`loopline.registry`: the alias is pinned to its version and the
  model's files listed (``model_files``), so a cached copy loads without a
  download; otherwise ``download_model`` fetches it into the cache.

Models in MLflow's format (an ``MLmodel`` file) load from any of these too.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError, LooplineError, NotFoundError
from loopline.models import cache
from loopline.models.files import verify
from loopline.models.flavors import get_flavor
from loopline.models.loaded import LoadedModel
from loopline.models.metadata import MODEL_FILE, ModelMetadata, read_metadata
from loopline.models.mlflow_format import MLMODEL_FILE, load_mlflow_model, read_mlflow_metadata
from loopline.refs import parse_model_uri
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from loopline.client.client import Client

__all__ = ["load", "load_dir", "local_path", "read_model_metadata"]

PREFERENCES = ("onnx",)


def load(
    uri: str | os.PathLike[str], *, trusted: bool = False, prefer: str | None = None
) -> LoadedModel:
    """Load the model ``uri`` names, verified against its recorded digests.

    ``trusted=True`` allows pickled models and unrecorded skops types (only for
    sources you trust: loading them can run their code). ``prefer="onnx"`` uses the
    model's checked ONNX export when it has one.

    >>> import tempfile
    >>> from sklearn.linear_model import LinearRegression
    >>> from loopline.models import save_model
    >>> folder = tempfile.mkdtemp() + "/m"
    >>> _ = save_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), folder, input_example=[[1.0]])
    >>> load(folder).predict([[2.0]])
    array([4.])
    """
    if prefer is not None and prefer not in PREFERENCES:
        raise InvalidArgumentError(f"unknown preference {prefer!r}", hint="use prefer='onnx'")
    path, verified = _resolve(uri)
    return load_dir(path, trusted=trusted, prefer=prefer, verified=verified)


def local_path(uri: str | os.PathLike[str]) -> Path:
    """A local folder holding the model ``uri`` names (downloaded and cached if needed)."""
    return _resolve(uri)[0]


def _resolve(uri: str | os.PathLike[str]) -> tuple[Path, bool]:
    """The local folder of ``uri`` and whether its files were just verified."""
    parsed = parse_model_uri(os.fspath(uri))
    if parsed.kind == "path":
        path = Path(parsed.path)
        if not path.is_dir():
            raise NotFoundError(f"no model folder at {path}")
        return path, False
    if parsed.kind == "run":
        assert parsed.run_id is not None
        return _run_model(parsed.run_id, parsed.path), True
    return _registry_model(os.fspath(uri))


def _run_model(run_id: str, path: str) -> Path:
    from loopline.tracking.fluent import get_client

    client = get_client()
    rel = path.strip("/")
    try:
        digest = Digest.of_bytes(
            client.read_artifact(run_id, f"{rel}/{MODEL_FILE}" if rel else MODEL_FILE)
        )
    except NotFoundError:
        digest = None  # an MLflow-format model, or nothing: no digests to cache by
    hit = cache.cached(digest) if digest is not None else None
    if hit is not None:
        return hit
    return cache.fetch(
        lambda tmp: client.download_artifacts(run_id, path, tmp),
        key=f"runs:/{run_id}/{rel}",
        expected=digest,
        downloaded=lambda meta: _stored_as_recorded(client, run_id, rel, meta),
    )


def _stored_as_recorded(client: Client, run_id: str, rel: str, meta: ModelMetadata) -> bool:
    """True when the run's artifact manifest holds every model file under the digest the
    YAML records. Downloads check each file against the manifest, so the files are then
    verified already and need not be hashed again."""
    prefix = f"{rel}/" if rel else ""
    folders = {prefix.rstrip("/")} | {
        (prefix + f.path).rpartition("/")[0] for f in meta.files if "/" in f.path
    }
    stored: dict[str, str | None] = {}
    for folder in folders:
        stored.update({a.path: a.digest for a in client.list_artifacts(run_id, folder)})
    return all(stored.get(prefix + f.path) == str(f.digest) for f in meta.files)


def _registry() -> Any:
    try:
        return importlib.import_module("loopline.registry")
    except ImportError as exc:
        raise LooplineError(
            "the model registry is not available in this loopline",
            hint="load by runs:/RUN_ID/PATH or a local path",
        ) from exc


def _registry_model(uri: str) -> tuple[Path, bool]:
    registry = _registry()
    pinned, listed = _registry_files(registry, uri)
    digest = Digest.parse(listed[MODEL_FILE]) if MODEL_FILE in listed else None
    hit = cache.cached(digest) if digest is not None else None
    if hit is not None:
        return hit, True
    download = getattr(registry, "download_model", None)
    if download is None:
        raise LooplineError("loopline.registry has no download_model()")
    fetched = cache.fetch(
        lambda tmp: Path(download(pinned, tmp)),
        key=pinned,
        expected=digest,
        # download_model checks each file against the registry's digests as it writes it
        downloaded=lambda meta: all(listed.get(f.path) == str(f.digest) for f in meta.files),
    )
    return fetched, True


def _registry_files(registry: Any, uri: str) -> tuple[str, dict[str, str]]:
    """The URI with its alias pinned to a version, and its files' digests by path, when the
    registry can list them (then a cached copy loads without a download)."""
    client = registry.get_client() if hasattr(registry, "get_client") else None
    lister = getattr(client, "model_files", None) or getattr(
        getattr(client, "transport", None), "model_files", None
    )
    if lister is None:
        return uri, {}
    found = lister(uri)
    return str(found.uri), {str(f.path): str(f.digest) for f in found.files}


def read_model_metadata(uri: str | os.PathLike[str]) -> ModelMetadata:
    """The metadata of a model (for a run, read without downloading the model's files)."""
    parsed = parse_model_uri(os.fspath(uri))
    if parsed.kind == "run" and parsed.run_id is not None:
        from loopline.tracking.fluent import get_client

        rel = parsed.path.strip("/")
        try:
            data = get_client().read_artifact(
                parsed.run_id, f"{rel}/{MODEL_FILE}" if rel else MODEL_FILE
            )
            return ModelMetadata.from_yaml(data)
        except NotFoundError:
            pass
    folder = local_path(uri)
    if (folder / MODEL_FILE).is_file():
        return read_metadata(folder)
    return read_mlflow_metadata(folder)


def load_dir(
    path: Path, *, trusted: bool = False, prefer: str | None = None, verified: bool = False
) -> LoadedModel:
    """Load the model directory ``path`` (loopline or MLflow format).

    Its files are verified against their digests unless ``verified`` says that was
    just done.
    """
    if not (path / MODEL_FILE).is_file():
        if (path / MLMODEL_FILE).is_file():
            predictor, meta = load_mlflow_model(path, trusted=trusted)
            return LoadedModel(predictor, meta, path, flavor=meta.flavor)
        raise NotFoundError(
            f"{path} holds no {MODEL_FILE} (nor an MLflow {MLMODEL_FILE})",
            hint="save one with loopline.models.save_model(model, path)",
        )
    meta = read_metadata(path)
    if not verified:
        verify(path, meta.files, exclude=[MODEL_FILE])
    alternative = meta.alternatives.get(prefer) if prefer else None
    if alternative is not None:
        flavor_name = str(alternative.get("flavor", prefer))
        loader = dict(alternative.get("loader") or {})
    else:
        flavor_name, loader = meta.flavor, meta.loader
    predictor = get_flavor(flavor_name).load(path, loader, trusted=trusted)
    return LoadedModel(predictor, meta, path, flavor=flavor_name)
