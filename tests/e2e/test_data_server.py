"""Data versioning through a real ``loopline server`` subprocess on 127.0.0.1.

The SDK and the CLI point at the server (``LOOPLINE_TRACKING_URI=http://...``): files
are hashed by the client, only the blobs the server lacks are uploaded, versions are
recorded by the server. The REST API is also called directly.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from typer.testing import CliRunner

import loopline
import loopline.data as data
from loopline.cli.data import app
from loopline.config import get_settings, reset_settings
from loopline.data import api
from loopline.data.http import DataHttpClient
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

API = "/api/v1/data"


@pytest.fixture
def client(server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process talks to the server (its own LOOPLINE_HOME keeps only the state cache)."""
    monkeypatch.setenv("LOOPLINE_TRACKING_URI", server_url)
    reset_settings()
    api.close()
    yield server_url
    api.close()


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The digests of every blob uploaded, alone or in a batch."""
    seen: list[str] = []
    alone = DataHttpClient.put_blob
    batched = DataHttpClient._post_batch

    def counting(self: DataHttpClient, digest: Digest, source: Path | bytes) -> None:
        seen.append(str(digest))
        alone(self, digest, source)

    def counting_batch(self: DataHttpClient, blobs: Any, body: bytes, media: str) -> None:
        seen.extend(str(d) for d, _ in blobs)
        batched(self, blobs, body, media)

    monkeypatch.setattr(DataHttpClient, "put_blob", counting)
    monkeypatch.setattr(DataHttpClient, "_post_batch", counting_batch)
    return seen


def _tree(root: Path) -> Path:
    (root / "many").mkdir(parents=True)
    for i in range(80):
        (root / "many" / f"f{i:02}.txt").write_text(f"line {i}\n" * (i + 1))
    (root / "big.bin").write_bytes(os.urandom((1 << 20) + 333))
    (root / "table.csv").write_text("x,label\n1,a\n2,b\n3,a\n")
    return root


def _contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_add_get_versions_through_the_server(
    client: str, tmp_path: Path, uploads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _tree(tmp_path / "tree")
    first = data.add(tree, "remote-set", message="over http", tags=["raw"])
    assert (first.ref, first.file_count, first.tags) == ("remote-set@1", 82, ["raw"])
    assert first.schema["table.csv"]["rows"] == 3
    assert len(uploads) == 84  # 82 files, the manifest, the profile
    assert data.add(tree, "remote-set").unchanged

    uploads.clear()
    (tree / "many" / "f07.txt").write_text("changed")
    second = data.add(tree, "remote-set")
    assert second.version == 2
    changed = second.manifest.by_path["many/f07.txt"].blob
    assert set(uploads) - {str(second.digest), str(second.profile_digest)} == {str(changed)}

    got = data.get("remote-set@raw")
    assert got.version == 1
    assert got.profile()["table.csv"]["rows"] == 3
    assert _contents(data.get("remote-set@2").path) == _contents(tree)
    assert data.get("remote-set@1").to_pandas("table.csv")["x"].tolist() == [1, 2, 3]
    assert [v.ref for v in data.versions("remote-set")] == ["remote-set@1", "remote-set@2"]
    assert [(d.name, d.latest) for d in data.list_datasets()] == [("remote-set", 2)]

    # Another client with an empty state cache: same content, no file is uploaded again.
    uploads.clear()
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / "other-client"))
    reset_settings()
    api.close()
    again = data.add(tree, "remote-copy")
    assert again.digest == second.digest
    assert set(uploads) <= {str(again.digest), str(again.profile_digest)}

    assert data.gc(dry_run=True).blobs_referenced >= 84  # answered by the server


def test_a_run_reading_a_dataset_through_the_server(client: str, tmp_path: Path) -> None:
    data.add(_tree(tmp_path / "tree"), "inputs")
    with loopline.start_run():
        assert data.get("inputs@1", context="training").version == 1


def test_the_cli_through_the_server(client: str, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    runner = CliRunner()
    added = runner.invoke(app, ["add", str(tree), "--name", "cli-remote"])
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("cli-remote@1 recorded: 82 files")
    shown = runner.invoke(app, ["show", "cli-remote@1", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["file_count"] == 82
    listed = runner.invoke(app, ["ls", "cli-remote@1", "many", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "many/f00.txt" in listed.stdout
    versions = runner.invoke(app, ["versions", "cli-remote", "--json"])
    assert versions.exit_code == 0, versions.output
    assert "cli-remote@1" in versions.stdout


def test_the_rest_api_checks_what_it_stores(client: str, tmp_path: Path) -> None:
    version = data.add(_tree(tmp_path / "tree"), "rest-set")
    http = httpx.Client(base_url=client + API, timeout=30)
    try:
        shown = http.get("/version", params={"ref": "rest-set@latest", "manifest": True}).json()
        assert shown["version"]["digest"] == str(version.digest)
        assert len(shown["manifest"]["entries"]) == 82

        entry = version.manifest.by_path["big.bin"]
        blob = http.get(f"/blobs/{entry.blob}")
        assert blob.status_code == 200
        assert Digest.of_bytes(blob.content) == entry.blob

        # An upload that does not match its digest is refused and stores nothing.
        claimed = Digest.of_bytes(b"what I claim")
        bad = http.put(f"/blobs/{claimed}", content=b"what I send")
        assert bad.json()["error_code"] == "DATA_LOSS"
        missing = http.post("/blobs/missing", json={"digests": [str(claimed), str(entry.blob)]})
        assert missing.json() == {"missing": [str(claimed)]}

        # A manifest naming blobs the server lacks is not recorded.
        from loopline.data.manifest import Entry, Manifest

        orphan = Manifest("file", [Entry("x.txt", 12, claimed.hex)])
        assert http.put(f"/blobs/{orphan.digest}", content=orphan.to_bytes()).status_code == 200
        refused = http.post("/versions", json={"name": "rest-set", "digest": str(orphan.digest)})
        assert refused.status_code == 400
        assert str(claimed) in refused.json()["message"]
        assert (
            http.get("/versions", params={"name": "rest-set"}).json()["versions"][-1]["version"]
            == 1
        )
        unknown = http.get("/version", params={"ref": "nope@1"})
        assert unknown.status_code == 404
    finally:
        http.close()


def test_settings_still_point_at_the_server(client: str) -> None:
    assert get_settings().remote
