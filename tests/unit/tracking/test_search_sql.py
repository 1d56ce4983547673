"""Run search against a real database: every operator, ordering, pagination, views.

The tests take a ``db`` fixture so the same suite can run on every metadata backend;
the fixture empties the run tables first, so a shared server database works too.
"""

from __future__ import annotations

import math
import operator
import random
import re
import shutil
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from loopline.errors import InvalidArgumentError
from loopline.store.metadata import Database
from loopline.store.metadata.schema import experiments, latest_metrics, params, runs, tags
from loopline.tracking.search import (
    And,
    Comparison,
    Node,
    Or,
    build_search_query,
    decode_page_token,
    encode_page_token,
    parse_filter,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

NAN = math.nan


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file: copying it is much faster than migrating each time."""
    path = tmp_path_factory.mktemp("search") / "template.db"
    Database(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def db(db: Database) -> Database:
    """The shared two-backend store (tests/conftest.py), emptied of its seed runs."""
    _empty(db)
    return db


def _empty(db: Database) -> None:
    with db.write() as conn:
        for table in (latest_metrics, params, tags, runs):
            conn.execute(sa.delete(table))
        conn.execute(sa.delete(experiments).where(experiments.c.id != 0))


def insert(
    db: Database,
    run_rows: Sequence[dict[str, Any]],
    metric_rows: Sequence[tuple[str, str, float]] = (),
    param_rows: Sequence[tuple[str, str, str]] = (),
    tag_rows: Sequence[tuple[str, str, str]] = (),
) -> None:
    with db.write() as conn:
        defaults = {
            "experiment_id": 0,
            "name": "",
            "status": "FINISHED",
            "user": "u",
            "end_time": None,
            "artifact_uri": "",
            "lifecycle_stage": "active",
        }
        conn.execute(runs.insert(), [{**defaults, **row} for row in run_rows])
        if metric_rows:
            conn.execute(
                latest_metrics.insert(),
                [
                    {
                        "run_id": r,
                        "key": k,
                        "value": None if math.isnan(v) else v,
                        "timestamp": 0,
                        "step": 0,
                    }
                    for r, k, v in metric_rows
                ],
            )
        for table, rows in ((params, param_rows), (tags, tag_rows)):
            if rows:
                conn.execute(
                    table.insert(), [{"run_id": r, "key": k, "value": v} for r, k, v in rows]
                )


def search(
    db: Database,
    filter: str | None = None,
    order_by: list[str] | None = None,
    *,
    view: Any = "active",
    experiment_ids: Sequence[int] = (0,),
    limit: int = 1000,
    offset: int = 0,
) -> list[str]:
    query = build_search_query(
        experiment_ids=list(experiment_ids),
        filter=filter,
        order_by=order_by,
        view=view,
        limit=limit,
        offset=offset,
    )
    with db.read() as conn:
        return [row.id for row in conn.execute(query)]


@pytest.fixture
def seeded(db: Database) -> Database:
    """Four runs in experiment 0 (r4 deleted) and one in experiment 1."""
    with db.write() as conn:
        conn.execute(
            experiments.insert().values(
                id=1, project_id=1, name="other", created_at=0, updated_at=0
            )
        )
    insert(
        db,
        [
            {"id": "r1", "name": "alpha", "status": "FINISHED", "start_time": 1000,
             "end_time": 2000, "user": "ada", "artifact_uri": "s3://b/r1"},
            {"id": "r2", "name": "Beta", "status": "FAILED", "start_time": 2000, "user": "bob"},
            {"id": "r3", "name": "gamma_1", "status": "RUNNING", "start_time": 3000},
            {"id": "r4", "name": "delta", "start_time": 3000, "lifecycle_stage": "deleted"},
            {"id": "r5", "name": "alpha", "start_time": 5000, "experiment_id": 1},
        ],
        [
            ("r1", "auc", 0.9), ("r1", "loss", 0.1),
            ("r2", "auc", 0.7), ("r2", "loss", NAN),
            ("r3", "loss", math.inf),
            ("r4", "auc", 0.8),
            ("r5", "auc", 0.95),
        ],
        [
            ("r1", "model", "rf"), ("r1", "lr", "0.1"),
            ("r2", "model", "xgb"),
            ("r3", "model", "it's"), ("r3", "lr", "0.01"),
            ("r4", "model", "rf"),
            ("r5", "model", "rf"),
        ],
        [
            ("r1", "team", "Vision"), ("r1", "mlflow.user", "ada"), ("r1", "x y", "1"),
            ("r2", "team", "vision"),
        ],
    )  # fmt: skip
    return db


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (None, {"r1", "r2", "r3"}),
        # metrics: the latest value; NaN (stored NULL) matches only !=
        ("metrics.auc > 0.75", {"r1"}),
        ("metrics.auc >= 0.7", {"r1", "r2"}),
        ("metrics.auc < 0.8", {"r2"}),
        ("metrics.auc <= 0.7", {"r2"}),
        ("metrics.auc = 0.9", {"r1"}),
        ("metrics.auc != 0.9", {"r2"}),
        ("metrics.loss < 1", {"r1"}),
        ("metrics.loss != 0.1", {"r2", "r3"}),
        ("metrics.loss > 1e300", {"r3"}),
        ("metrics.loss = inf", {"r3"}),
        ("metrics.loss < inf", {"r1"}),
        ("metrics.loss > -inf", {"r1", "r3"}),
        ("metrics.auc > -1 and metrics.auc < 1", {"r1", "r2"}),
        ("metrics.missing > -inf", set()),
        # params: != and NOT IN need the key to be present
        ("params.model = 'rf'", {"r1"}),
        ("params.model != 'rf'", {"r2", "r3"}),
        ("params.model = 'it''s'", {"r3"}),
        ('params.model = "it\'s"', {"r3"}),
        ("params.model IN ('rf', 'xgb')", {"r1", "r2"}),
        ("params.model NOT IN ('rf')", {"r2", "r3"}),
        ("params.lr IS NULL", {"r2"}),
        ("params.lr IS NOT NULL", {"r1", "r3"}),
        ("params.lr != '0.1'", {"r3"}),
        ("params.model LIKE 'r%'", {"r1"}),
        ("params.model LIKE 'R%'", set()),
        ("params.model ILIKE 'R%'", {"r1"}),
        ("params.model LIKE '%''%'", {"r3"}),
        ("params.model LIKE '__'", {"r1"}),
        # tags: LIKE is case-sensitive, ILIKE is not
        ("tags.team = 'vision'", {"r2"}),
        ("tags.team LIKE 'vision'", {"r2"}),
        ("tags.team LIKE 'V%'", {"r1"}),
        ("tags.team ILIKE 'VISION'", {"r1", "r2"}),
        ("tags.team ILIKE 'v_s%'", {"r1", "r2"}),
        ("tags.`x y` = '1'", {"r1"}),
        ("tags.\"mlflow.user\" = 'ada'", {"r1"}),
        ("tags.mlflow.user = 'ada'", {"r1"}),
        ("tags.team IS NULL", {"r3"}),
        # attributes
        ("attributes.status = 'FINISHED'", {"r1"}),
        ("status != 'FINISHED'", {"r2", "r3"}),
        ("attributes.status IN ('FAILED', 'RUNNING')", {"r2", "r3"}),
        ("attributes.status NOT IN ('FAILED', 'RUNNING')", {"r1"}),
        ("attributes.status LIKE 'F%'", {"r1", "r2"}),
        ("attributes.status LIKE 'f%'", set()),
        ("attributes.status ILIKE 'f%'", {"r1", "r2"}),
        ("run_name LIKE 'gamma\\_%'", {"r3"}),
        ("run_name LIKE 'gamma%1'", {"r3"}),
        ("run_name LIKE '%a'", {"r1", "r2"}),
        ("run_name LIKE 'b%'", set()),
        ("run_name ILIKE 'b%'", {"r2"}),
        ("attributes.`Run Name` = 'alpha'", {"r1"}),
        ("attributes.run_id IN ('r1', 'r3', 'r9')", {"r1", "r3"}),
        ("attributes.run_id = 'r4'", set()),
        ("attributes.start_time > 1500", {"r2", "r3"}),
        ("attributes.start_time > 1999.5", {"r2", "r3"}),
        ("attributes.start_time < 2000.5", {"r1", "r2"}),
        ("attributes.created >= 3000", {"r3"}),
        ("attributes.end_time < 3000", {"r1"}),
        ("attributes.end_time != 2000", set()),
        ("attributes.user_id = 'ada'", {"r1"}),
        ("attributes.artifact_uri LIKE 's3://%'", {"r1"}),
        ("attributes.experiment_id = '0'", {"r1", "r2", "r3"}),
        ("attributes.experiment_id != 0", set()),
        ("attributes.lifecycle_stage = 'active'", {"r1", "r2", "r3"}),
        # OR and parentheses; AND binds tighter
        ("metrics.auc > 0.85 OR params.model = 'xgb'", {"r1", "r2"}),
        ("params.model = 'xgb' OR params.model = 'rf' AND metrics.auc > 0.95", {"r2"}),
        ("(params.model = 'xgb' OR params.model = 'rf') AND metrics.auc > 0.8", {"r1"}),
        ("params.lr IS NULL OR (tags.team IS NULL AND metrics.loss > 0)", {"r2", "r3"}),
    ],
)
def test_filter(seeded: Database, filter: str | None, expected: set[str]) -> None:
    assert set(search(seeded, filter)) == expected


@pytest.mark.parametrize(
    ("view", "expected"),
    [("active", ["r3", "r2", "r1"]), ("deleted", ["r4"]), ("all", ["r3", "r4", "r2", "r1"])],
)
def test_view(seeded: Database, view: str, expected: list[str]) -> None:
    assert search(seeded, view=view) == expected


def test_deleted_runs_match_filters_in_their_view(seeded: Database) -> None:
    assert search(seeded, "metrics.auc > 0.75", view="all") == ["r4", "r1"]
    assert search(seeded, "attributes.lifecycle_stage = 'deleted'", view="all") == ["r4"]


def test_experiment_ids(seeded: Database) -> None:
    assert search(seeded, experiment_ids=[1]) == ["r5"]
    assert search(seeded, experiment_ids=[0, 1]) == ["r5", "r3", "r2", "r1"]
    assert search(seeded, experiment_ids=[]) == []
    assert search(seeded, "attributes.experiment_id = '1'", experiment_ids=[0, 1]) == ["r5"]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        # default: start_time DESC, then run id
        (None, ["r3", "r2", "r1"]),
        (["metrics.auc DESC"], ["r1", "r2", "r3"]),
        (["metrics.auc ASC"], ["r2", "r1", "r3"]),
        # missing and NaN values sort last both ways; inf sorts as a number
        (["metrics.loss"], ["r1", "r3", "r2"]),
        (["metrics.loss DESC"], ["r3", "r1", "r2"]),
        (["params.lr DESC"], ["r1", "r3", "r2"]),
        (["params.lr ASC"], ["r3", "r1", "r2"]),
        (["tags.team"], ["r1", "r2", "r3"]),
        (["tags.team DESC"], ["r2", "r1", "r3"]),
        (["attributes.end_time"], ["r1", "r3", "r2"]),
        (["attributes.end_time DESC"], ["r1", "r3", "r2"]),
        (["attributes.start_time"], ["r1", "r2", "r3"]),
        (["created DESC"], ["r3", "r2", "r1"]),
        (["attributes.status"], ["r2", "r1", "r3"]),
        (["attributes.run_id DESC"], ["r3", "r2", "r1"]),
        (["params.model", "metrics.auc DESC"], ["r3", "r1", "r2"]),
    ],
)
def test_order_by(seeded: Database, order_by: list[str] | None, expected: list[str]) -> None:
    assert search(seeded, order_by=order_by) == expected


def test_order_by_with_filter_and_two_joined_keys(seeded: Database) -> None:
    order = ["metrics.auc DESC", "metrics.loss"]
    assert search(seeded, "params.model IN ('rf', 'xgb')", order, view="all") == [
        "r1",
        "r4",
        "r2",
    ]


def test_ties_break_on_start_time_then_run_id(db: Database) -> None:
    insert(
        db,
        [{"id": f"r{i}", "start_time": 100 * (i % 3)} for i in range(9)],
        [(f"r{i}", "auc", 0.5) for i in range(9)],
    )
    assert search(db, order_by=["metrics.auc"]) == [
        "r2", "r5", "r8", "r1", "r4", "r7", "r0", "r3", "r6",
    ]  # fmt: skip


def test_pagination_is_stable_and_complete(db: Database) -> None:
    # Many ties on every sort key: only the run-id tie-breaker orders them.
    insert(
        db,
        [{"id": f"run{i:02d}", "start_time": i % 4} for i in range(37)],
        [(f"run{i:02d}", "auc", float(i % 3)) for i in range(0, 37, 2)],
    )
    for order_by in (None, ["metrics.auc DESC"], ["attributes.start_time ASC"]):
        everything = search(db, order_by=order_by)
        assert len(everything) == 37
        pages: list[str] = []
        token: str | None = None
        while True:
            offset = decode_page_token(token)
            page = search(db, order_by=order_by, limit=10, offset=offset)
            pages.extend(page)
            if len(page) < 10:
                break
            token = encode_page_token(offset + len(page))
        assert pages == everything


def test_limit_and_offset(seeded: Database) -> None:
    assert search(seeded, limit=2) == ["r3", "r2"]
    assert search(seeded, limit=2, offset=2) == ["r1"]
    assert search(seeded, limit=0) == []
    assert search(seeded, offset=10) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": -1}, {"offset": -1}, {"view": "archived"}],
)
def test_invalid_arguments(kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {
        "experiment_ids": [0],
        "filter": None,
        "order_by": None,
        "limit": 10,
        "offset": 0,
        **kwargs,
    }
    with pytest.raises(InvalidArgumentError):
        build_search_query(**arguments)


def test_selects_every_runs_column(seeded: Database) -> None:
    query = build_search_query(
        experiment_ids=[0], filter=None, order_by=["metrics.auc DESC"], limit=1, offset=0
    )
    with seeded.read() as conn:
        row = conn.execute(query).mappings().one()
    assert list(row.keys()) == list(runs.c.keys())
    assert row["id"] == "r1"
    assert row["end_time"] == 2000


HOSTILE = [
    "x' OR 1=1 --",
    "'; DROP TABLE runs; --",
    'a" OR "1"="1',
    "%' OR '%'='",
    "x\\' OR '1'='1",
    "a`b",
]


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@pytest.mark.parametrize("value", HOSTILE)
def test_values_and_keys_are_bound_not_spliced(db: Database, value: str) -> None:
    key = "k'\"`) --"
    insert(
        db,
        [{"id": "hit", "start_time": 1}, {"id": "miss", "start_time": 2}],
        [("hit", key, 1.0)],
        [("hit", key, value), ("miss", key, "x")],
        [("hit", "t", value)],
    )
    escaped_key = "`" + key.replace("`", "``") + "`"
    # LIKE has its own escapes: a backslash, % or _ in the value is matched literally.
    pattern = re.sub(r"([\\%_])", r"\\\1", value)
    filters = [
        f"params.{escaped_key} = {_quote(value)}",
        f"params.{escaped_key} IN ({_quote(value)}, 'zzz')",
        f"tags.t = {_quote(value)} AND metrics.{escaped_key} >= 1",
        f"tags.t LIKE {_quote(pattern)}",
    ]
    for text in filters:
        query = build_search_query(
            experiment_ids=[0],
            filter=text,
            order_by=[f"params.{escaped_key} DESC"],
            limit=10,
            offset=0,
        )
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            sql = str(query.compile(dialect=dialect))
            assert value not in sql, sql
            assert key not in sql, sql
            assert "1=1" not in sql, sql
        with db.read() as conn:
            assert [row.id for row in conn.execute(query)] == ["hit"], text
    assert search(db) == ["miss", "hit"]  # the tables are intact


def test_injection_value_from_the_brief(db: Database) -> None:
    filter = "params.model = 'x'' OR 1=1 --'"
    node = parse_filter(filter)
    assert node == Comparison("param", "model", "=", "x' OR 1=1 --")
    insert(db, [{"id": "r1", "start_time": 1}], param_rows=[("r1", "model", "rf")])
    assert search(db, filter) == []


# -- a differential check against a Python evaluation of the same AST ----------------


def _like(pattern: str, text: str, *, fold: bool) -> bool:
    regex, chars = [], iter(pattern)
    for char in chars:
        if char == "\\":
            regex.append(re.escape(next(chars)))
        else:
            regex.append({"%": ".*", "_": "."}.get(char, re.escape(char)))
    flags = re.DOTALL | (re.IGNORECASE if fold else 0)
    return re.fullmatch("".join(regex), text, flags) is not None


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None:
        return False
    if isinstance(left, float) and math.isnan(left):
        return op == "!="
    if op in ("LIKE", "ILIKE"):
        return _like(right, left, fold=op == "ILIKE")
    if op in ("IN", "NOT IN"):
        return (left in right) == (op == "IN")
    comparisons = {
        "=": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }
    return bool(comparisons[op](left, right))


def _matches(run: dict[str, Any], node: Node) -> bool:
    if isinstance(node, And):
        return all(_matches(run, item) for item in node.items)
    if isinstance(node, Or):
        return any(_matches(run, item) for item in node.items)
    values = run[node.entity]
    if node.op == "IS NULL":
        return node.key not in values
    if node.op == "IS NOT NULL":
        return node.key in values
    return _compare(node.op, values.get(node.key), node.value)


RANDOM_FILTERS = [
    "metrics.m0 > 0.5",
    "metrics.m0 != 0.5",
    "metrics.m1 <= 0.25 or metrics.m2 >= 0.75",
    "params.p0 = 'b' and tags.t0 ILIKE 'X%'",
    "params.p0 IN ('a', 'c')",
    "params.p1 LIKE 'A%' OR params.p1 LIKE '%b'",
    "params.p1 NOT IN ('aa', 'Ab')",
    "params.p2 IS NULL and (metrics.m0 < 0.3 or tags.t0 = 'x1')",
    "tags.t0 LIKE 'x_' and attributes.status != 'FAILED'",
    "attributes.start_time >= 50 and attributes.start_time < 120",
    "attributes.run_name ILIKE 'RUN-1%'",
    "(metrics.m0 > 0.2 or params.p0 = 'a') and (metrics.m1 < 0.8 or tags.t0 IS NOT NULL)",
]


def test_sql_agrees_with_python_on_random_runs(db: Database) -> None:
    rng = random.Random(7)
    data = []
    for i in range(200):
        run = {
            "id": f"run{i:03d}",
            "name": f"run-{i}",
            "status": rng.choice(["FINISHED", "FAILED"]),
            "start_time": rng.randrange(200),
            "metric": {
                f"m{j}": rng.choice([rng.random(), rng.random(), NAN, 0.5])
                for j in range(3)
                if rng.random() < 0.8
            },
            "param": {
                f"p{j}": rng.choice(["a", "b", "c", "aa", "Ab", "ab"])
                for j in range(3)
                if rng.random() < 0.7
            },
            "tag": {"t0": rng.choice(["x1", "X2", "xy", "y"])} if rng.random() < 0.6 else {},
        }
        run["attribute"] = {
            "status": run["status"],
            "start_time": run["start_time"],
            "run_name": run["name"],
        }
        data.append(run)
    insert(
        db,
        [{k: run[k] for k in ("id", "name", "status", "start_time")} for run in data],
        [(run["id"], k, v) for run in data for k, v in run["metric"].items()],
        [(run["id"], k, v) for run in data for k, v in run["param"].items()],
        [(run["id"], k, v) for run in data for k, v in run["tag"].items()],
    )
    for text in RANDOM_FILTERS:
        node = parse_filter(text)
        assert node is not None
        expected = {run["id"] for run in data if _matches(run, node)}
        assert set(search(db, text)) == expected, text


def test_like_compiles_per_dialect() -> None:
    query = build_search_query(
        experiment_ids=[0],
        filter="params.a LIKE 'x%' AND tags.b ILIKE 'y%'",
        order_by=None,
        limit=1,
        offset=0,
    )
    sqlite_sql = str(query.compile(dialect=sqlite.dialect()))
    assert "params.value GLOB ?" in sqlite_sql
    assert "lower(tags.value) LIKE lower(?) ESCAPE '\\'" in sqlite_sql
    postgres_sql = str(query.compile(dialect=postgresql.dialect()))
    assert "params.value LIKE %(param_1)s::VARCHAR ESCAPE '\\'" in postgres_sql
    assert "tags.value ILIKE" in postgres_sql


# -- the plan at scale ---------------------------------------------------------------


def test_query_plan_on_ten_thousand_runs_uses_indexes(
    tmp_path: Path, sqlite_template: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "big.db")
    big = Database(f"sqlite:///{tmp_path}/big.db")
    rng = random.Random(1)
    count = 10_000
    ids = [f"{i:032x}" for i in range(count)]
    auc = {run: rng.random() for run in ids}
    model = {run: rng.choice(["rf", "xgb", "lr", "svm"]) for run in ids}
    insert(
        big,
        [{"id": run, "start_time": i} for i, run in enumerate(ids)],
        [(run, key, rng.random() if key != "auc" else auc[run]) for run in ids for key in
         ("auc", "loss", "f1")],
        [(run, key, model[run] if key == "model" else str(rng.random())) for run in ids
         for key in ("model", "lr", "depth")],
        [(run, "team", rng.choice("ab")) for run in ids],
    )  # fmt: skip
    query = build_search_query(
        experiment_ids=[0],
        filter="metrics.auc > 0.5 and params.model = 'rf'",
        order_by=["metrics.auc DESC"],
        limit=100,
        offset=0,
    )
    with big.read() as conn:
        compiled = query.compile(conn, compile_kwargs={"render_postcompile": True})
        values = compiled.construct_params()
        positional = tuple(values[name] for name in compiled.positiontup or ())
        plan = [
            row[-1]
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, positional)
        ]
        found = [row.id for row in conn.execute(query)]
    big.close()
    # Every table is reached through an index; the filters use the (key, value) ones.
    assert not [line for line in plan if line.startswith("SCAN")], plan
    assert any("ix_latest_metrics_key_value" in line for line in plan), plan
    assert any("ix_params_key_value" in line for line in plan), plan
    expected = sorted(
        (run for run in ids if auc[run] > 0.5 and model[run] == "rf"), key=lambda r: -auc[r]
    )
    assert found == expected[:100]
