"""The registry SDK: module-level functions over a process-wide :class:`RegistryClient`.

>>> import tempfile
>>> from pathlib import Path
>>> from loopline.config import get_settings, reset_settings
>>> import loopline
>>> reset_settings(get_settings().with_(home=Path(tempfile.mkdtemp()), tracking_uri=None))
>>> loopline.set_tracking_uri(None)  # the fluent API follows the new home too
>>> with loopline.start_run() as run:
...     loopline.log_text("flavor: sklearn\\n", "model/loopline-model.yaml")
...     loopline.log_text("weights", "model/weights.bin")
>>> v = register_model(f"runs:/{run.info.run_id}/model", "churn")
>>> v.ref, v.flavor
('churn@1', 'sklearn')
>>> _ = set_alias("churn", "champion", 1)
>>> resolve("models:/churn@champion").version
1
>>> sorted(p.name for p in download_model("models:/churn@champion", tempfile.mkdtemp()).iterdir())
['loopline-model.yaml', 'weights.bin']
>>> close()
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from loopline.config import get_settings

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from loopline.registry.client import RegistryClient
    from loopline.registry.entities import (
        Alias,
        AliasChange,
        LoggedModel,
        ModelVersion,
        RegisteredModel,
        Review,
        VersionComparison,
        VersionLineage,
    )

__all__ = [
    "alias_history",
    "approve",
    "close",
    "compare_versions",
    "create_logged_model",
    "create_registered_model",
    "delete_alias",
    "delete_model_version",
    "download_model",
    "get_client",
    "get_model_version",
    "get_registered_model",
    "lineage",
    "list_versions",
    "register_model",
    "reject",
    "request_review",
    "resolve",
    "search_registered_models",
    "set_alias",
]

_client: RegistryClient | None = None
_lock = threading.Lock()


def get_client() -> RegistryClient:
    """The client for the current settings (a new one when the settings changed)."""
    global _client
    settings = get_settings()
    with _lock:
        if _client is None or _client.settings is not settings:
            from loopline.registry.client import RegistryClient

            if _client is not None:
                _client.close()
            _client = RegistryClient(settings=settings)
        return _client


def close() -> None:
    """Close the process-wide client (it reopens on the next call)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None


def create_registered_model(
    name: str,
    description: str = "",
    tags: dict[str, str] | None = None,
    require_approval: bool = False,
) -> RegisteredModel:
    """Create a registered model; with ``require_approval`` new versions start pending review."""
    return get_client().create_registered_model(name, description, tags, require_approval)


def get_registered_model(name: str) -> RegisteredModel:
    return get_client().get_registered_model(name)


def search_registered_models(
    filter_string: str | None = None, order_by: list[str] | None = None, max_results: int = 10_000
) -> list[RegisteredModel]:
    """Registered models matching a filter such as ``"name LIKE 'churn%'"``."""
    return get_client().search_registered_models(filter_string, order_by, max_results)


def register_model(
    model_uri: str, name: str, *, tags: dict[str, str] | None = None, description: str = ""
) -> ModelVersion:
    """Register ``runs:/RUN/PATH``, ``models:/m-ID`` or ``models:/NAME/V`` as a new version
    of ``name`` (created when missing); the files are copied, so the version is immutable."""
    return get_client().register_model(model_uri, name, tags=tags, description=description)


def get_model_version(name: str, version: int) -> ModelVersion:
    return get_client().get_model_version(name, version)


def resolve(ref_or_uri: str) -> ModelVersion:
    """``NAME@3``, ``NAME@champion``, ``NAME@latest``, ``NAME@sha:…`` or ``models:/…``."""
    return get_client().resolve(ref_or_uri)


def list_versions(name: str) -> list[ModelVersion]:
    return get_client().list_versions(name)


def set_alias(name: str, alias: str, version: int, *, protect: bool | None = None) -> Alias:
    """Point ``alias`` at ``version`` atomically; the move is kept in the alias history.
    A protected alias (``protect=True``) only accepts approved versions."""
    return get_client().set_alias(name, alias, version, protect=protect)


def delete_alias(name: str, alias: str) -> None:
    get_client().delete_alias(name, alias)


def alias_history(name: str, alias: str | None = None) -> list[AliasChange]:
    """Every move of ``alias`` (or of all the model's aliases): who, when, from, to."""
    return get_client().alias_history(name, alias)


def request_review(name: str, version: int, comment: str = "") -> Review:
    return get_client().request_review(name, version, comment)


def approve(name: str, version: int, comment: str = "") -> Review:
    return get_client().approve(name, version, comment)


def reject(name: str, version: int, comment: str = "") -> Review:
    return get_client().reject(name, version, comment)


def delete_model_version(name: str, version: int, force: bool = False) -> None:
    """Delete a version; refused while an alias points at it unless ``force``."""
    get_client().delete_model_version(name, version, force)


def lineage(ref: str) -> VersionLineage:
    """version -> run -> dataset versions (-> pipeline runs), and what the version feeds."""
    return get_client().lineage(ref)


def compare_versions(
    name: str,
    a: int | str,
    b: int | str,
    dataset: str | None = None,
    *,
    target: str | None = None,
) -> VersionComparison:
    """Params and metrics of two versions' runs side by side (``a``/``b``: numbers or aliases).

    With ``dataset`` (``NAME@REF`` of a tabular dataset version), both models also
    predict on its table, ``target`` column dropped: ``predictions`` holds their
    agreement and, with a ``target``, each one's accuracy/F1 or MAE/RMSE.
    """
    found = get_client().compare_versions(name, a, b)
    if dataset is not None:
        from loopline.registry._predictions import compare_predictions

        found.predictions = compare_predictions(found.a, found.b, dataset, target)
    elif target is not None:
        from loopline.errors import InvalidArgumentError

        raise InvalidArgumentError("a target column needs a dataset", hint="pass dataset=NAME@REF")
    return found


def download_model(uri: str, dest: str | os.PathLike[str] | None = None) -> Path:
    """Materialise a model's files (version, logged model or run path), digests verified."""
    return get_client().download_model(uri, dest)


def create_logged_model(
    experiment_id: str,
    name: str,
    *,
    source_run_id: str | None = None,
    model_type: str = "",
    flavor: str = "",
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> LoggedModel:
    """An MLflow 3 logged model (``models:/m-<id>``); upload its files, then finalize it."""
    return get_client().create_logged_model(
        experiment_id,
        name,
        source_run_id=source_run_id,
        model_type=model_type,
        flavor=flavor,
        params=params,
        tags=tags,
    )
