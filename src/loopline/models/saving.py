"""``save_model``: write a model directory, atomically.

The folder is written next to its destination and renamed into place, so a
crash leaves no half-written model behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline._version import __version__
from loopline.errors import AlreadyExistsError, InvalidArgumentError
from loopline.models import environment as env
from loopline.models.examples import as_model_input, write_example
from loopline.models.files import scan
from loopline.models.flavors import detect_flavor, get_flavor
from loopline.models.metadata import MODEL_FILE, ModelMetadata
from loopline.models.signature import Signature, infer_schema
from loopline.store.paths import safe_relpath

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from loopline.models.flavors.base import Flavor, Predictor
    from loopline.models.metadata import RunProvenance

__all__ = ["EXTRA_DIR", "save_model"]

EXTRA_DIR = "extra_files"
log = logging.getLogger(__name__)


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    input_example: Any = None,
    signature: Signature | dict[str, Any] | None = None,
    flavor: str | None = None,
    onnx: bool = False,
    extra_files: Mapping[str, str | os.PathLike[str]]
    | Iterable[str | os.PathLike[str]]
    | None = None,
    metadata: dict[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    run: RunProvenance | None = None,
) -> ModelMetadata:
    """Save ``model`` as a loopline model directory at ``path``; its metadata.

    ``flavor`` is detected from the model when not given. The signature is inferred
    from ``input_example`` when not given (the output from a prediction on it).
    ``onnx=True`` also stores a checked ONNX export (scikit-learn models).
    ``extra_files`` are copied under ``extra_files/``; ``metadata`` is your own,
    stored as given; ``options`` are the flavor's (``serialization`` for
    scikit-learn and pyfunc, ``format`` for XGBoost, ``mode``/``init_kwargs`` for torch).

    >>> import tempfile
    >>> from sklearn.linear_model import LinearRegression
    >>> model = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])
    >>> meta = save_model(model, tempfile.mkdtemp() + "/m", input_example=[[0.5]])
    >>> meta.flavor, [f.path for f in meta.files]
    ('sklearn', ['input_example.npy', 'model.skops'])
    >>> meta.signature.outputs
    Schema(tensor=TensorSpec(dtype='float64', shape=(-1,)))
    """
    dest = Path(path)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise AlreadyExistsError(f"{dest} already exists", hint="give a new or empty folder")
    flv = get_flavor(flavor) if flavor else detect_flavor(model)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        meta = _write(
            model, tmp, flv, input_example, signature, onnx, extra_files, metadata, options, run
        )
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _write(
    model: Any,
    folder: Path,
    flv: Flavor,
    input_example: Any,
    signature: Signature | dict[str, Any] | None,
    onnx: bool,
    extra_files: Any,
    metadata: dict[str, Any] | None,
    options: Mapping[str, Any] | None,
    run: RunProvenance | None,
) -> ModelMetadata:
    example = as_model_input(input_example) if input_example is not None else None
    saved = flv.save(model, folder, {"example": example, **(options or {})})
    predictor: Predictor | None = None
    if example is not None and (signature is None or onnx):
        predictor = flv.wrap(model, saved.loader)
    sig = _signature(signature, example, predictor)
    example_name = write_example(folder, example) if example is not None else None
    alternatives: dict[str, dict[str, Any]] = {}
    packages = [*flv.packages, *saved.packages]
    if onnx:
        if flv.name != "sklearn":
            raise InvalidArgumentError(
                f"ONNX export is for scikit-learn models, not {flv.name}",
                hint="save an ONNX model directly: save_model(onnx_proto, path)",
            )
        if example is None or predictor is None:
            raise InvalidArgumentError(
                "ONNX export needs an input_example: it fixes the input and checks the result"
            )
        from loopline.models.onnx_export import export_sklearn

        alternatives["onnx"] = export_sklearn(model, example, predictor, folder)
        packages += ["onnxruntime", "onnx"]
    _copy_extra_files(folder, extra_files)
    meta = ModelMetadata(
        flavor=flv.name,
        loader=saved.loader,
        signature=sig,
        input_example=example_name,
        python_version=env.python_version(),
        requirements=env.capture(packages, extra=flv.extra),
        created_at=int(time.time() * 1000),
        loopline_version=__version__,
        run=run,
        alternatives=alternatives,
        metadata=dict(metadata or {}),
        files=scan(folder),
    )
    (folder / MODEL_FILE).write_text(meta.to_yaml(), encoding="utf-8")
    return meta


def _signature(
    given: Signature | dict[str, Any] | None, example: Any, predictor: Predictor | None
) -> Signature | None:
    if isinstance(given, Signature):
        return given
    if isinstance(given, dict):
        return Signature.from_dict(given)
    if example is None:
        return None
    outputs = None
    if predictor is not None:
        data = (
            example.to_numpy()
            if predictor.wants_array and hasattr(example, "to_numpy")
            else example
        )
        try:
            outputs = infer_schema(predictor.predict(data))
        except Exception as exc:  # the model is saved all the same, without outputs
            log.warning("could not infer the output signature from the example: %s", exc)
    return Signature(infer_schema(example), outputs)


def _copy_extra_files(folder: Path, extra_files: Any) -> None:
    if not extra_files:
        return
    pairs = (
        list(extra_files.items())
        if hasattr(extra_files, "items")
        else [(Path(p).name, p) for p in extra_files]
    )
    for name, source in pairs:
        target = folder / EXTRA_DIR / safe_relpath(str(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(source).is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
