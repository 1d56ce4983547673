"""``loopline models``: the registry's CLI through typer's runner, on the embedded store.

Runs and their model folders are made with the SDK; the CLI registers, lists,
shows, aliases, reviews, traces, compares, downloads and deletes them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import typer
from typer.testing import CliRunner, Result

import loopline
from loopline.cli import main, models
from loopline.cli._errors import LooplineGroup

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _root() -> typer.Typer:
    """The real root app once it mounts ``models``; until then, the same root with it mounted."""
    if any(group.name == "models" for group in main.app.registered_groups):
        return main.app
    root = typer.Typer(cls=LooplineGroup, no_args_is_help=True)
    root.callback()(main.root)
    root.add_typer(models.app, name="models")
    return root


@pytest.fixture
def cli() -> Callable[..., Result]:
    runner = CliRunner()
    app = _root()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["models", *args], prog_name="loopline")

    return invoke


def _model_run(weights: str, *, auc: float, depth: int) -> str:
    with loopline.start_run() as run:
        loopline.log_param("depth", depth)
        loopline.log_metric("auc", auc)
        loopline.log_text(
            "flavor: sklearn\nsignature: {inputs: [{name: x}]}\n", "model/loopline-model.yaml"
        )
        loopline.log_text(weights, "model/weights.bin")
    loopline.flush()
    return run.info.run_id


@pytest.fixture
def two_versions(cli: Callable[..., Result]) -> tuple[str, str]:
    first = _model_run("one", auc=0.8, depth=3)
    second = _model_run("two", auc=0.9, depth=5)
    for run_id in (first, second):
        result = cli("register", f"runs:/{run_id}/model", "--name", "churn")
        assert result.exit_code == 0, result.output
    return first, second


def test_register_list_versions_and_show(
    cli: Callable[..., Result], two_versions: tuple[str, str]
) -> None:
    listing = cli("list", "--json")
    assert listing.exit_code == 0, listing.output
    assert [(m["name"], m["latest_version"]) for m in json.loads(listing.stdout)] == [("churn", 2)]
    table = cli("list")
    assert "churn" in table.stdout
    assert "1 model" in table.stdout
    versions = json.loads(cli("versions", "churn", "--json").stdout)
    assert [(v["ref"], v["flavor"]) for v in versions] == [
        ("churn@1", "sklearn"),
        ("churn@2", "sklearn"),
    ]
    shown = cli("show", "churn@1", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["run_id"] == two_versions[0]
    assert [f["path"] for f in data["files"]] == ["loopline-model.yaml", "weights.bin"]
    human = cli("show", "churn")
    assert human.exit_code == 0, human.output
    assert "churn@2" in human.stdout
    assert "weights.bin" in human.stdout


def test_alias_set_history_and_lineage(
    cli: Callable[..., Result], two_versions: tuple[str, str]
) -> None:
    assert cli("alias", "set", "churn", "champion", "1").exit_code == 0
    moved = cli("alias", "set", "churn", "champion", "2", "-m", "better auc")
    assert moved.exit_code == 0, moved.output
    assert "1 → 2" in moved.stdout
    history = json.loads(cli("alias", "history", "churn", "champion", "--json").stdout)
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in history] == [
        (None, 1, ""),
        (1, 2, "better auc"),
    ]
    assert "better auc" in cli("alias", "history", "churn").stdout
    lineage = cli("lineage", "churn@champion", "--json")
    assert json.loads(lineage.stdout)["run_id"] == two_versions[1]
    tree = cli("lineage", "churn@champion")
    assert tree.exit_code == 0, tree.output
    assert f"run {two_versions[1]}" in tree.stdout
    assert cli("alias", "delete", "churn", "champion").exit_code == 0
    missing = cli("lineage", "churn@champion")
    assert missing.exit_code == 1
    assert "no alias 'champion'" in missing.output


def test_approve_reject_and_protected_aliases(
    cli: Callable[..., Result], two_versions: tuple[str, str]
) -> None:
    refused = cli("alias", "set", "churn", "champion", "1", "--protect")
    assert refused.exit_code == 1
    assert "approve it first" in refused.output
    approved = cli("approve", "churn@1", "-m", "validated on holdout")
    assert approved.exit_code == 0, approved.output
    assert "approved churn@1" in approved.stdout
    assert cli("alias", "set", "churn", "champion", "1", "--protect").exit_code == 0
    assert cli("reject", "churn@2", "-m", "overfits").exit_code == 0
    assert cli("alias", "set", "churn", "champion", "2").exit_code == 1
    again = cli("approve", "churn@2")
    assert again.exit_code == 1
    assert "already rejected" in again.output
    reviews = json.loads(cli("show", "churn@2", "--json").stdout)["reviews"]
    assert [(r["decision"], r["comment"]) for r in reviews] == [("rejected", "overfits")]


def test_diff_download_and_delete(
    cli: Callable[..., Result], two_versions: tuple[str, str], tmp_path: Path
) -> None:
    diff = cli("diff", "churn@1", "churn@2", "--json")
    assert diff.exit_code == 0, diff.output
    rows = {(r["section"], r["key"]): r for r in json.loads(diff.stdout)["rows"]}
    assert (rows["params", "depth"]["a"], rows["params", "depth"]["b"]) == ("3", "5")
    assert rows["metrics", "auc"]["differs"]
    assert "depth" in cli("diff", "churn@1", "churn@latest", "--diff-only").stdout
    out = cli("download", "models:/churn/1", str(tmp_path / "m"))
    assert out.exit_code == 0, out.output
    assert (tmp_path / "m" / "weights.bin").read_text() == "one"
    assert cli("alias", "set", "churn", "champion", "2").exit_code == 0
    refused = cli("delete", "churn@2")
    assert refused.exit_code == 1
    assert "champion" in refused.output
    assert cli("delete", "churn@2", "--force").exit_code == 0
    assert [v["version"] for v in json.loads(cli("versions", "churn", "--json").stdout)] == [1]


@pytest.mark.parametrize(
    "args",
    [
        ("show", "churn@!x"),
        ("show", "123@1"),
        ("diff", "churn@1", "fraud@1"),
        ("delete", "churn@champion"),
        ("register", "runs:/x/model", "--name", "m", "--tag", "novalue"),
        ("alias", "set", "churn", "champion", "0"),
    ],
)
def test_usage_errors_exit_2(cli: Callable[..., Result], args: tuple[str, ...]) -> None:
    assert cli(*args).exit_code == 2


def test_unknown_things_exit_1_with_a_hint(cli: Callable[..., Result]) -> None:
    result = cli("versions", "ghost")
    assert result.exit_code == 1
    assert "registered model 'ghost' does not exist" in result.output
    assert "loopline models list" in result.output


def test_a_logged_model_registers_loads_by_alias_and_prints_its_env(
    cli: Callable[..., Result],
) -> None:
    models_sdk = pytest.importorskip("loopline.models")
    np = pytest.importorskip("numpy")
    linear = pytest.importorskip("sklearn.linear_model")
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    fitted = linear.LogisticRegression().fit(x, y)
    with loopline.start_run():
        models_sdk.log_model(fitted, name="model", registered_model_name="clf", input_example=x[:2])
    assert cli("alias", "set", "clf", "champion", "1").exit_code == 0
    shown = json.loads(cli("show", "clf@champion", "--json").stdout)
    assert shown["flavor"] == "sklearn"
    assert shown["signature"]["inputs"]
    loaded = models_sdk.load("models:/clf@champion")
    assert (loaded.predict(x) == fitted.predict(x)).all()
    env = cli("env", "models:/clf@champion")
    assert env.exit_code == 0, env.output
    assert "scikit-learn==" in env.stdout


def test_diff_compares_predictions_on_a_dataset_version(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    import loopline.data

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.assign(target=y).to_csv(tmp_path / "cancer.csv", index=False)
    loopline.data.add(tmp_path / "cancer.csv", "cancer")
    for model in (
        DecisionTreeClassifier(max_depth=1, random_state=0),
        LogisticRegression(max_iter=5000),
    ):
        with loopline.start_run():
            loopline.log_model(
                model.fit(x, y), registered_model_name="tumour", input_example=x.head(2)
            )
    args = ("diff", "tumour@1", "tumour@2", "--dataset", "cancer@1", "--target", "target")
    found = cli(*args, "--json")
    assert found.exit_code == 0, found.output
    pred = json.loads(found.stdout)["predictions"]
    assert (pred["dataset"], pred["rows"], pred["task"]) == ("cancer@1", 569, "classification")
    assert 0.8 < pred["agreement"] < 1.0
    assert pred["metrics_b"]["accuracy"] > pred["metrics_a"]["accuracy"]
    human = cli(*args)
    assert human.exit_code == 0, human.output
    assert "predictions on cancer@1 (569 rows, classification): agreement 0.9" in human.stdout
    assert "accuracy" in human.stdout
    assert "f1" in human.stdout
    assert cli("diff", "tumour@1", "tumour@2", "--target", "target").exit_code == 2
