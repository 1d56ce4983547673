"""Downloaded models, kept under ``LOOPLINE_HOME/cache/models/<digest>``.

The digest is that of the model's ``loopline-model.yaml``, which records the
digest of every other file: equal digests mean equal models. A model enters the
cache only once verified, by an atomic rename (a crash leaves no half-written
entry), and is verified again on every load: blake3 hashes at several GB/s, so
this costs little. An entry that fails verification is dropped and downloaded
again from the store, which stays the source of truth.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from loopline.config import get_settings
from loopline.errors import IntegrityError
from loopline.models.files import hash_file, verify
from loopline.models.metadata import MODEL_FILE, ModelMetadata, read_metadata
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["cache_root", "cached", "fetch", "staging", "verify_model_dir"]

log = logging.getLogger(__name__)


def cache_root() -> Path:
    return get_settings().home / "cache" / "models"


def verify_model_dir(
    folder: Path,
    expected: Digest | None = None,
    *,
    downloaded: Callable[[ModelMetadata], bool] | None = None,
) -> None:
    """Check a model folder's YAML file (against ``expected``) and every file it records.

    ``downloaded(metadata)`` answers whether each recorded file was just downloaded
    with its digest checked against the digest the YAML records; then the content
    is not hashed a second time.
    """
    if expected is not None:
        actual = hash_file(folder / MODEL_FILE)
        if actual != expected:
            raise IntegrityError(
                f"{MODEL_FILE} in {folder} has digest {actual}, expected {expected}",
                hint="the model changed after it was recorded: load it again",
            )
    meta = read_metadata(folder)
    hashed = downloaded is not None and downloaded(meta)
    verify(folder, meta.files, exclude=[MODEL_FILE], hashed=hashed)


def cached(digest: Digest) -> Path | None:
    """The verified cache entry for ``digest``, or None (a corrupt entry is dropped)."""
    folder = cache_root() / digest.hex
    if not (folder / MODEL_FILE).is_file():
        return None
    try:
        verify_model_dir(folder, digest)
    except IntegrityError as exc:
        log.warning("dropping the corrupt cached model %s: %s", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return folder


@contextlib.contextmanager
def staging() -> Iterator[Path]:
    """A temporary folder on the cache's file system (so a rename moves it in)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(
    download: Callable[[Path], Path],
    *,
    key: str,
    expected: Digest | None = None,
    downloaded: Callable[[ModelMetadata], bool] | None = None,
) -> Path:
    """Download a model with ``download(staging_dir) -> model_dir``, verify it, cache it.

    With ``expected``, the downloaded YAML file must have that digest; ``downloaded``
    is passed to :func:`verify_model_dir`. A model
    without one (MLflow's format records no digests) is kept, unverified, under
    ``.unverified/<digest of key>`` and replaced by each download.
    """
    with staging() as tmp:
        model_dir = download(tmp)
        if not (model_dir / MODEL_FILE).is_file():
            final = cache_root() / ".unverified" / Digest.of_bytes(key.encode()).hex
            final.parent.mkdir(exist_ok=True)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(model_dir, final)
            return final
        verify_model_dir(model_dir, expected, downloaded=downloaded)
        final = cache_root() / hash_file(model_dir / MODEL_FILE).hex
        if not final.exists():
            with contextlib.suppress(OSError):  # another process may have won the race
                os.replace(model_dir, final)
        if not (final / MODEL_FILE).is_file():
            raise IntegrityError(f"could not place the downloaded model in {final}")
        return final
