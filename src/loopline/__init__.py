"""loopline: MLOps in one package."""

from loopline._version import __version__

__all__ = ["__version__"]
