"""``loopline server --artifacts-uri s3://BUCKET/PREFIX`` end to end, against moto's S3 server.

A run artifact logged through the server, and a dataset added through it (its
small files in batches), land as objects in the bucket (under the prefix), and
come back verified.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

import loopline
import loopline.data as data
from loopline.config import reset_settings
from loopline.data import api
from loopline.store.digest import Digest
from loopline.testing.s3 import MotoServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.e2e.conftest import ServerProcess


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def _keys(moto: MotoServer, bucket: str, prefix: str) -> set[str]:
    client: Any = moto.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def test_artifacts_and_datasets_land_in_s3(
    moto_server: MotoServer,
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)  # the server subprocess inherits them
    bucket = moto_server.create_bucket()
    server = start_server(artifacts_uri=f"s3://{bucket}/team/store")

    monkeypatch.setenv("LOOPLINE_TRACKING_URI", server.url)
    reset_settings()
    api.close()
    loopline.set_tracking_uri(server.url)
    try:
        report = tmp_path / "report.txt"
        report.write_bytes(b"accuracy: 0.93\n" * 100)
        with loopline.start_run() as run:
            loopline.log_artifact(report)
        blob = Digest.of_bytes(report.read_bytes())
        keys = _keys(moto_server, bucket, "team/store/")
        assert f"team/store/objects/{blob.hex[:2]}/{blob.hex[2:]}" in keys

        tree = tmp_path / "tree"
        tree.mkdir()
        (tree / "a.csv").write_text("x\n1\n2\n")
        (tree / "b.bin").write_bytes(os.urandom(4096))
        (tree / "many").mkdir()
        for i in range(300):  # small files go up in batches, stored object by object
            (tree / "many" / f"{i:03}.txt").write_text(f"row {i}\n" * (i + 1))
        version = data.add(tree, "s3-backed")
        keys = _keys(moto_server, bucket, "team/store/objects/")
        for entry in version.files:
            assert f"team/store/objects/{entry.digest[:2]}/{entry.digest[2:]}" in keys
        out = tmp_path / "out"
        data.checkout("s3-backed@1", out)  # and come back in batches, verified
        assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == {
            p.relative_to(tree): p.read_bytes() for p in tree.rglob("*") if p.is_file()
        }
        assert run.info.run_id
    finally:
        loopline.set_tracking_uri(None)
        api.close()
