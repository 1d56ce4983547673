"""Content-addressed blob stores, picked by URI scheme.

``open_blob_store("/some/dir")`` or ``file:///some/dir`` gives the local store;
``s3://bucket/prefix`` the S3 store (extra ``loopline[s3]``, imported lazily).
"""

from __future__ import annotations

from loopline.store.blobs.base import BlobStore, open_blob_store

__all__ = ["BlobStore", "open_blob_store"]
