"""The model format end to end: a model logged through ``loopline server`` over HTTP,
loaded in fresh processes (the second one from the cache), and ``loopline models env``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LOOPLINE = Path(sys.executable).with_name("loopline")

TRAIN = """
import json, sys
import loopline
from loopline.models import log_model
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier

x, y = load_wine(return_X_y=True, as_frame=True)
loopline.set_experiment("wine")
with loopline.start_run() as run:
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    loopline.log_metric("train_acc", float(model.score(x, y)))
    info = log_model(model, "model", input_example=x.head(5), onnx=True)
print(json.dumps({"uri": info.model_uri, "pred": model.predict(x).tolist()}))
"""

LOAD = """
import json, sys
from loopline.client.client import Client
from loopline.models import load
from sklearn.datasets import load_wine

downloads = []
real = Client.download_artifacts
def counting(self, *args, **kwargs):
    downloads.append(args)
    return real(self, *args, **kwargs)
Client.download_artifacts = counting

x, _ = load_wine(return_X_y=True, as_frame=True)
model = load(sys.argv[1])
onnx = load(sys.argv[1], prefer="onnx")
print(json.dumps({
    "pred": model.predict(x).tolist(),
    "onnx_flavor": onnx.flavor,
    "metrics": model.metadata.run.metrics,
    "downloads": len(downloads),
    "path": str(model.path),
}))
"""


_MODELS_APP = "from loopline.cli.models import app; app(prog_name='loopline models')"


def _python(code: str, *args: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def client_env(server_url: str, tmp_path: Path) -> dict[str, str]:
    """A client process pointed at the server, with its own (empty) LOOPLINE_HOME for the cache."""
    env = dict(os.environ)
    env["LOOPLINE_TRACKING_URI"] = server_url
    env["LOOPLINE_HOME"] = str(tmp_path / "client-home")
    env.pop("LOOPLINE_ARTIFACTS_URI", None)
    return env


def test_log_through_the_server_and_load_in_fresh_processes(client_env: dict[str, str]) -> None:
    trained = _python(TRAIN, env=client_env)
    uri = str(trained["uri"])
    assert uri.startswith("runs:/")

    first = _python(LOAD, uri, env=client_env)
    assert first["pred"] == trained["pred"]
    assert first["onnx_flavor"] == "onnx"
    assert first["metrics"] == {"train_acc": 1.0}
    assert first["downloads"] == 1  # the ONNX load reused the copy the first load cached
    assert Path(str(first["path"])).parent == Path(client_env["LOOPLINE_HOME"]) / "cache" / "models"

    second = _python(LOAD, uri, env=client_env)
    assert second["downloads"] == 0
    assert second["pred"] == trained["pred"]


def test_models_env_prints_a_requirements_file(client_env: dict[str, str]) -> None:
    uri = str(_python(TRAIN, env=client_env)["uri"])
    assert LOOPLINE.exists(), f"the console script is not installed at {LOOPLINE}"
    help_text = subprocess.run(
        [str(LOOPLINE), "--help"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    if " models " in help_text:
        argv = [str(LOOPLINE), "models", "env", uri]
    else:  # the group exists but is not wired into the main CLI yet: call it directly
        argv = [sys.executable, "-c", _MODELS_APP, "env", uri]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=client_env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# Python 3.")
    assert any(line.startswith("scikit-learn==") for line in lines)
    assert any(line.startswith("skops==") for line in lines)
