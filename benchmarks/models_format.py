"""The model format, loopline vs MLflow: save, log, first load and cached load of ~100 MB models.

Two models, each logged into a fresh embedded store (loopline) or a SQLite
tracking store with a local artifact root (MLflow), then loaded back by
``runs:/RUN/model``:

1. ``weights``: a generic Python model holding one ``weights_mb`` MB float32
   matrix saved as ``.npy`` (loopline: by import path, ``Class.load(path)``; MLflow:
   a ``PythonModel`` with the ``.npy`` as an artifact). Deserialising is one
   ``np.load``, so this measures the format and the store: digests, copies, cache.
2. ``forest``: an ExtraTreesClassifier of about ``forest_mb`` MB, saved with skops
   on both sides (MLflow 3's default for scikit-learn), so deserialisation is the
   same code and the difference is again the format and the store.

Timed: ``save_model`` to a folder, ``log_model`` into the run (save and upload),
the first load (download, verify, deserialise), a second load (loopline: from its
verified cache; MLflow downloads again) and, for ``weights``, loopline's fetch
alone (download and verify, no deserialising) next to a plain ``shutil.copyfile``
of the same bytes on the same disk: "close to disk speed". Figures are MB/s of the
model's size (higher is better), medians of ``repeats``.

Run one side: ``python benchmarks/models_format.py --side mlflow --json``.
"""

from __future__ import annotations

import contextlib
import gc
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script, possibly by a peer's interpreter
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    Goal,
    Progress,
    Results,
    Row,
    figure,
    loopline_store,
    run_item,
    scaled,
    side_main,
    temp_dir,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

NAME = "models_format"
PEERS = {"mlflow": ["mlflow==3.17.*", "skops"]}
PEER_ENV = {"mlflow": {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}}
PACKAGES = {
    "loopline": ["loopline", "scikit-learn", "skops", "numpy", "blake3"],
    "mlflow": ["mlflow", "scikit-learn", "skops", "numpy"],
}

SIZES = {"weights_mb": 100, "forest_mb": 100, "repeats": 3}
QUICK_FLOORS = {"weights_mb": 10, "forest_mb": 10, "repeats": 1}
FOREST_TREES = 4
FOREST_ROWS_PER_MB = 2_000  # fully grown extra trees on random labels: ~25 MB of skops per tree


def _rows() -> list[Row]:
    rows: list[Row] = []
    for model, size in (
        ("weights", "{weights_mb} MB weights"),
        ("forest", "~{forest_mb} MB forest"),
    ):
        for step, label in (
            ("log", "log_model (save + store)"),
            ("first_load", "first load by runs:/ (download, verify, deserialise)"),
            ("cached_load", "second load (loopline: verified cache)"),
        ):
            rows.append(
                Row(
                    label=f"{size}: {label}",
                    ours=f"{model}_{step}_mb_s",
                    peer="mlflow",
                    theirs=f"{model}_{step}_mb_s",
                    higher_is_better=True,
                )
            )
    rows += [
        Row(
            label="{weights_mb} MB weights: save_model to a folder",
            ours="weights_save_mb_s",
            peer="mlflow",
            theirs="weights_save_mb_s",
            higher_is_better=True,
        ),
        Row(
            label="  fetch by runs:/ (download + verify), as a share of a plain file copy",
            ours="weights_fetch_vs_copy",
            peer="mlflow",
            theirs=None,
            higher_is_better=True,
            goal=Goal("min", 0.5, ">= 0.5 of disk copy"),
        ),
        Row(
            label="  cached load, as a share of a plain file copy",
            ours="weights_cached_vs_copy",
            peer="mlflow",
            theirs=None,
            higher_is_better=True,
            goal=Goal("min", 1.0, ">= disk copy"),
        ),
    ]
    return rows


ROWS = _rows()


def sizes_for(quick: bool) -> dict[str, int]:
    return scaled(SIZES, quick, QUICK_FLOORS)


# -- models shared by both sides --------------------------------------------------------
class BigWeights:
    """One large float32 matrix; ``save``/``load`` write and read it as ``.npy``."""

    def __init__(self, weights: Any) -> None:
        self.weights = weights

    def predict(self, x: Any) -> Any:
        import numpy as np

        arr = np.asarray(x, dtype=np.float32)
        return arr @ self.weights[: arr.shape[1], :4]

    def save(self, path: Path) -> None:
        import numpy as np

        np.save(path / "weights.npy", self.weights, allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> BigWeights:
        import numpy as np

        return cls(np.load(path / "weights.npy", allow_pickle=False))


def make_weights(mb: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(3)
    return rng.standard_normal((mb * 1024 * 1024 // (4 * 256), 256), dtype=np.float32)


def make_forest(mb: int) -> Any:
    """An ExtraTreesClassifier of about ``mb`` MB (random labels grow the trees fully)."""
    import numpy as np
    from sklearn.ensemble import ExtraTreesClassifier

    rng = np.random.default_rng(5)
    rows = mb * FOREST_ROWS_PER_MB
    x = rng.standard_normal((rows, 4))
    y = rng.integers(0, 2, rows)
    model = ExtraTreesClassifier(
        n_estimators=FOREST_TREES, max_features=1, random_state=0, n_jobs=2
    ).fit(x, y)
    return model, x[:5]


def _folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def _copy_rate(source: Path, folder: str) -> float:
    """MB/s of a plain copy of ``source`` on this disk (the reference for "disk speed")."""
    target = Path(folder, "copy.bin")
    t0 = time.perf_counter()
    shutil.copyfile(source, target)
    elapsed = time.perf_counter() - t0
    target.unlink()
    return source.stat().st_size / 1e6 / elapsed


def _rate(key: str, mb: float, seconds: float, repeats: int, note: str = "") -> Results:
    return {key: figure(mb / seconds, "MB/s", repeats, note or f"{mb:.0f} MB in {seconds:.3f} s")}


# == loopline ===========================================================================
def _loopline_model(
    key: str, model: Any, example: Any, repeats: int, progress: Progress
) -> tuple[Results, Path]:
    """save, log, first and cached load of one model; also returns its logged folder."""
    from loopline.models import load, log_model, save_model
    from loopline.models.cache import cache_root

    results: Results = {}
    with temp_dir("ll-models-") as tmp, loopline_store(str(Path(tmp, "home"))) as ll:
        counter = iter(range(1_000_000))
        saved = Path(tmp, "saved")

        def save() -> None:
            save_model(model, saved / str(next(counter)), input_example=example)

        seconds = _median_seconds(save, repeats)
        mb = _folder_mb(saved / "0")
        results |= _rate(f"{key}_save_mb_s", mb, seconds, repeats)
        progress(f"{key}: {mb:.0f} MB, save_model {seconds:.2f} s")

        uris: list[str] = []

        def log() -> None:
            with ll.start_run():
                uris.append(log_model(model, "model", input_example=example).model_uri)

        seconds = _median_seconds(log, repeats)
        results |= _rate(f"{key}_log_mb_s", mb, seconds, repeats)

        first, cached = [], []
        for uri in uris:  # each run's model is new to the cache
            shutil.rmtree(cache_root(), ignore_errors=True)
            first.append(_median_seconds(lambda uri=uri: load(uri), 1))
            cached.append(_median_seconds(lambda uri=uri: load(uri), 1))
        results |= _rate(f"{key}_first_load_mb_s", mb, statistics.median(first), len(first))
        results |= _rate(f"{key}_cached_load_mb_s", mb, statistics.median(cached), len(cached))
        progress(
            f"{key}: first load {statistics.median(first):.2f} s, cached {statistics.median(cached):.2f} s"
        )
        if key == "weights":
            results |= _loopline_fetch(uris, mb, tmp, saved / "0" / "data" / "weights.npy")
    return results, saved


def _loopline_fetch(uris: list[str], mb: float, tmp: str, npy: Path) -> Results:
    from loopline.models.cache import cache_root
    from loopline.models.loading import local_path

    fetch, hit = [], []
    for uri in uris:
        shutil.rmtree(cache_root(), ignore_errors=True)
        fetch.append(_median_seconds(lambda uri=uri: local_path(uri), 1))
        hit.append(_median_seconds(lambda uri=uri: local_path(uri), 1))
    copy = statistics.median(_copy_rate(npy, tmp) for _ in range(3))
    fetch_rate = mb / statistics.median(fetch)
    hit_rate = mb / statistics.median(hit)
    note = f"plain copy {copy:.0f} MB/s"
    return {
        "weights_fetch_mb_s": figure(fetch_rate, "MB/s", len(fetch), note),
        "weights_fetch_vs_copy": figure(fetch_rate / copy, "x copy", len(fetch), note),
        "weights_cached_vs_copy": figure(hit_rate / copy, "x copy", len(hit), note),
        "disk_copy_mb_s": figure(copy, "MB/s", 3),
    }


def loopline_weights(sizes: dict[str, int], progress: Progress) -> Results:
    from benchmarks.models_format import BigWeights as Importable  # importable by path

    weights = Importable(make_weights(sizes["weights_mb"]))
    example = [[0.5] * 8]
    return _loopline_model("weights", weights, example, sizes["repeats"], progress)[0]


def loopline_forest(sizes: dict[str, int], progress: Progress) -> Results:
    forest, example = make_forest(sizes["forest_mb"])
    return _loopline_model("forest", forest, example, sizes["repeats"], progress)[0]


def run_loopline(sizes: dict[str, int], progress: Progress) -> Results:
    results: Results = {}
    for fn, model in ((loopline_weights, "weights"), (loopline_forest, "forest")):
        keys = [f"{model}_{s}_mb_s" for s in ("save", "log", "first_load", "cached_load")]
        run_item(results, keys, progress, lambda fn=fn: fn(sizes, progress))
    return results


# == MLflow =============================================================================
@contextlib.contextmanager
def mlflow_store(tmp: str) -> Iterator[Any]:
    import mlflow

    uri = f"sqlite:///{tmp}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    exp_id = mlflow.create_experiment("bench", artifact_location=Path(tmp, "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp_id)
    yield mlflow


def _mlflow_weights_model(npy: Path) -> Any:
    import mlflow.pyfunc

    class Weights(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def load_context(self, context):  # type: ignore[no-untyped-def]
            import numpy as np

            self.weights = np.load(context.artifacts["weights"], allow_pickle=False)

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return model_input

    return Weights()


def _mlflow_model(
    key: str,
    save: Callable[[str], None],
    log: Callable[[], str],
    load: Callable[[str], Any],
    repeats: int,
    progress: Progress,
) -> Results:
    results: Results = {}
    with temp_dir("mlflow-models-") as tmp, mlflow_store(tmp) as mlflow:
        counter = iter(range(1_000_000))
        saved = Path(tmp, "saved")
        seconds = _median_seconds(lambda: save(str(saved / str(next(counter)))), repeats)
        mb = _folder_mb(saved / "0")
        results |= _rate(f"{key}_save_mb_s", mb, seconds, repeats)
        uris: list[str] = []

        def logged() -> None:
            with mlflow.start_run():
                uris.append(log())

        seconds = _median_seconds(logged, repeats)
        results |= _rate(f"{key}_log_mb_s", mb, seconds, repeats)
        first = [_median_seconds(lambda uri=uri: load(uri), 1) for uri in uris]
        again = [_median_seconds(lambda uri=uri: load(uri), 1) for uri in uris]
        results |= _rate(f"{key}_first_load_mb_s", mb, statistics.median(first), len(first))
        results |= _rate(
            f"{key}_cached_load_mb_s",
            mb,
            statistics.median(again),
            len(again),
            "MLflow has no model cache: it downloads again",
        )
        progress(f"{key}: {mb:.0f} MB, first load {statistics.median(first):.2f} s")
    return results


def mlflow_weights(sizes: dict[str, int], progress: Progress) -> Results:
    import mlflow.pyfunc
    import numpy as np

    with tempfile.TemporaryDirectory() as src:
        npy = Path(src, "weights.npy")
        np.save(npy, make_weights(sizes["weights_mb"]), allow_pickle=False)
        model = _mlflow_weights_model(npy)
        kwargs = {"artifacts": {"weights": str(npy)}, "pip_requirements": ["numpy"]}
        return _mlflow_model(
            "weights",
            lambda path: mlflow.pyfunc.save_model(path, python_model=model, **kwargs),
            lambda: mlflow.pyfunc.log_model(name="model", python_model=model, **kwargs).model_uri,
            mlflow.pyfunc.load_model,
            sizes["repeats"],
            progress,
        )


def mlflow_forest(sizes: dict[str, int], progress: Progress) -> Results:
    import mlflow.sklearn

    forest, _ = make_forest(sizes["forest_mb"])
    kwargs: dict[str, Any] = {
        "serialization_format": "skops",
        "skops_trusted_types": ["sklearn.tree._tree.Tree"],
        "pip_requirements": ["scikit-learn", "skops"],
    }
    return _mlflow_model(
        "forest",
        lambda path: mlflow.sklearn.save_model(forest, path, **kwargs),
        lambda: mlflow.sklearn.log_model(forest, name="model", **kwargs).model_uri,
        mlflow.sklearn.load_model,
        sizes["repeats"],
        progress,
    )


def run_mlflow(sizes: dict[str, int], progress: Progress) -> Results:
    results: Results = {}
    for fn, model in ((mlflow_weights, "weights"), (mlflow_forest, "forest")):
        keys = [f"{model}_{s}_mb_s" for s in ("save", "log", "first_load", "cached_load")]
        run_item(results, keys, progress, lambda fn=fn: fn(sizes, progress))
    return results


SIDES = {"loopline": run_loopline, "mlflow": run_mlflow}

if __name__ == "__main__":
    side_main(NAME, SIDES, sizes_for, PACKAGES)
