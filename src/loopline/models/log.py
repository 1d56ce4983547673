"""``log_model``: save a model into the active run's artifacts (and register it)."""

from __future__ import annotations

import importlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import LooplineError
from loopline.models.metadata import RunProvenance
from loopline.models.saving import save_model
from loopline.store.paths import safe_relpath

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping

    from loopline.client.client import Client
    from loopline.models.metadata import ModelMetadata
    from loopline.models.signature import Signature

__all__ = ["ModelInfo", "log_model", "run_provenance"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What :func:`log_model` stored: ``model_uri`` (``runs:/<run_id>/<name>``) and more."""

    model_uri: str
    run_id: str
    artifact_path: str
    flavor: str
    metadata: ModelMetadata
    registered_model_version: Any = None
    """The registry's ModelVersion when ``registered_model_name`` was given."""
    model_id: str | None = None
    """The MLflow-3-style logged model (``m-<id>``) holding the same files, when the
    registry is there."""

    @property
    def logged_model_uri(self) -> str | None:
        """``models:/m-<id>``: loads the same model as :attr:`model_uri`."""
        return None if self.model_id is None else f"models:/{self.model_id}"

    @property
    def signature(self) -> Signature | None:
        return self.metadata.signature


def run_provenance(client: Client, run_id: str) -> RunProvenance:
    """The run's latest metrics and the dataset versions it read (when data versioning knows)."""
    client.flush()
    metrics = dict(client.get_run(run_id).data.metrics)
    datasets: list[dict[str, str]] = []
    try:
        from loopline.data import api as data_api

        lineage = data_api.lineage(run_id=run_id)
        datasets = [{"ref": ref, "context": context} for ref, context in lineage.datasets]
    except (ImportError, LooplineError):  # a remote store, or no data versioning
        pass
    return RunProvenance(run_id, metrics, datasets)


def log_model(
    model: Any,
    name: str = "model",
    *,
    registered_model_name: str | None = None,
    input_example: Any = None,
    signature: Signature | dict[str, Any] | None = None,
    onnx: bool = False,
    flavor: str | None = None,
    options: Mapping[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    extra_files: Mapping[str, str | os.PathLike[str]]
    | Iterable[str | os.PathLike[str]]
    | None = None,
) -> ModelInfo:
    """Save ``model`` under ``name`` in the active run's artifacts (a run starts if none is).

    The model records the run's metrics and the dataset versions it read. Like MLflow
    3, it is also a logged model (``info.logged_model_uri``, ``models:/m-<id>``). With
    ``registered_model_name``, the logged model becomes a new version of that
    registered model. See :func:`loopline.models.save_model` for the other arguments.
    """
    from loopline.tracking.fluent import active_run, get_client, start_run

    artifact_path = safe_relpath(name)
    run = active_run() or start_run()
    run_id = run.info.run_id
    client = get_client()
    with tempfile.TemporaryDirectory(prefix="loopline-model-") as tmp:
        folder = Path(tmp) / "model"
        meta = save_model(
            model,
            folder,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            onnx=onnx,
            extra_files=extra_files,
            metadata=metadata,
            options=options,
            run=run_provenance(client, run_id),
        )
        client.log_artifacts(run_id, folder, artifact_path)
        model_id = log_logged_model(run.info.experiment_id, run_id, artifact_path, folder, meta)
    uri = f"runs:/{run_id}/{artifact_path}"
    version = register(uri, registered_model_name) if registered_model_name else None
    return ModelInfo(uri, run_id, artifact_path, meta.flavor, meta, version, model_id)


def log_logged_model(
    experiment_id: str, run_id: str, name: str, folder: Path, meta: ModelMetadata
) -> str | None:
    """Store ``folder`` as an MLflow 3 logged model of the run too; its id, or None when
    this loopline has no registry. Blobs are content-addressed: the files are stored once."""
    try:
        registry = importlib.import_module("loopline.registry")
    except ImportError:
        return None
    reg = registry.get_client()
    logged = reg.create_logged_model(experiment_id, name, source_run_id=run_id, flavor=meta.flavor)
    reg.log_logged_model_files(logged.model_id, folder)
    reg.finalize_logged_model(logged.model_id)
    return str(logged.model_id)


def register(model_uri: str, name: str) -> Any:
    """``loopline.registry.register_model(model_uri, name)``, when the registry is there."""
    try:
        registry = importlib.import_module("loopline.registry")
        register_model = registry.register_model
    except (ImportError, AttributeError) as exc:
        raise LooplineError(
            "the model registry is not available in this loopline, so the model was logged "
            f"as {model_uri} but not registered as {name!r}",
            hint="register it later with loopline.registry.register_model",
        ) from exc
    return register_model(model_uri, name)
