"""Model classes the tests save by import path (so they must live in an importable module)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path


class Centroids:
    """Nearest-centroid classifier stored as JSON: saved and loaded without pickle."""

    def __init__(self, centroids: dict[str, list[float]] | None = None) -> None:
        self.centroids = centroids or {}

    def fit(self, x: Any, y: Any) -> Centroids:
        arr, labels = np.asarray(x, dtype=float), np.asarray(y)
        self.centroids = {str(k): arr[labels == k].mean(axis=0).tolist() for k in np.unique(labels)}
        return self

    def predict(self, x: Any) -> Any:
        arr = np.asarray(x, dtype=float)
        names = list(self.centroids)
        centers = np.asarray([self.centroids[n] for n in names])
        dist = ((arr[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        return np.asarray(names)[dist.argmin(axis=1)]

    def save(self, path: Path) -> None:
        (path / "centroids.json").write_text(json.dumps(self.centroids))

    @classmethod
    def load(cls, path: Path) -> Centroids:
        return cls(json.loads((path / "centroids.json").read_text()))


class Doubler:
    """No save/load: stored with cloudpickle, so it loads with trusted=True only."""

    def predict(self, x: Any) -> Any:
        return np.asarray(x) * 2


class BigWeights:
    """A model of one large weight matrix, stored as .npy (for the size benchmark)."""

    def __init__(self, weights: np.ndarray[Any, Any]) -> None:
        self.weights = weights

    def predict(self, x: Any) -> Any:
        return np.asarray(x, dtype=np.float32) @ self.weights[: np.asarray(x).shape[1]]

    def save(self, path: Path) -> None:
        np.save(path / "weights.npy", self.weights, allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> BigWeights:
        return cls(np.load(path / "weights.npy", allow_pickle=False))


def torch_module_class() -> Any:
    """A small MLP class (created lazily: torch is optional)."""
    import torch

    global TinyNet
    if "TinyNet" in globals():
        return globals()["TinyNet"]

    class TinyNet(torch.nn.Module):  # type: ignore[no-redef]
        def __init__(self, n_in: int = 4, n_out: int = 3) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Linear(n_in, 16), torch.nn.ReLU(), torch.nn.Linear(16, n_out)
            )

        def forward(self, x: Any) -> Any:
            return self.body(x)

    TinyNet.__qualname__ = "TinyNet"
    TinyNet.__module__ = __name__
    return TinyNet
