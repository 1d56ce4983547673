"""The search filter parser: what it accepts, what it rejects, and where it points."""

from __future__ import annotations

import math

import pytest

import loopline.tracking.search as search
from loopline.errors import FilterSyntaxError, InvalidArgumentError
from loopline.tracking.search import (
    And,
    Comparison,
    Or,
    OrderKey,
    decode_page_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)


def metric(key: str, op: str, value: float) -> Comparison:
    return Comparison("metric", key, op, value)


def param(key: str, op: str, value: object = None) -> Comparison:
    return Comparison("param", key, op, value)  # type: ignore[arg-type]


def tag(key: str, op: str, value: object = None) -> Comparison:
    return Comparison("tag", key, op, value)  # type: ignore[arg-type]


def attr(key: str, op: str, value: object) -> Comparison:
    return Comparison("attribute", key, op, value)  # type: ignore[arg-type]


def test_public_names_are_exported_and_sorted() -> None:
    assert search.__all__ == sorted(search.__all__)
    for name in search.__all__:
        assert getattr(search, name) is not None


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_filter_is_none(text: str | None) -> None:
    assert parse_filter(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # every operator
        ("metrics.auc = 0.5", metric("auc", "=", 0.5)),
        ("metrics.auc != 0.5", metric("auc", "!=", 0.5)),
        ("metrics.auc > 0.5", metric("auc", ">", 0.5)),
        ("metrics.auc >= 0.5", metric("auc", ">=", 0.5)),
        ("metrics.auc < 0.5", metric("auc", "<", 0.5)),
        ("metrics.auc <= 0.5", metric("auc", "<=", 0.5)),
        ("params.model LIKE 'r%'", param("model", "LIKE", "r%")),
        ("params.model ILIKE 'R%'", param("model", "ILIKE", "R%")),
        ("params.model IN ('rf', 'xgb')", param("model", "IN", ("rf", "xgb"))),
        ("params.model NOT IN ('rf')", param("model", "NOT IN", ("rf",))),
        ("params.model IS NULL", param("model", "IS NULL")),
        ("params.model IS NOT NULL", param("model", "IS NOT NULL")),
        ("tags.team != 'a'", tag("team", "!=", "a")),
        # case-insensitive keywords and prefixes, no spaces needed around operators
        ("METRICS.auc>0.5", metric("auc", ">", 0.5)),
        ("params.model like 'r%'", param("model", "LIKE", "r%")),
        ("params.model iLiKe 'r%'", param("model", "ILIKE", "r%")),
        ("params.model not in ('a')", param("model", "NOT IN", ("a",))),
        ("params.model is not null", param("model", "IS NOT NULL")),
        ("Params.model = 'a'", param("model", "=", "a")),
        # entity aliases
        ("metric.auc > 1", metric("auc", ">", 1.0)),
        ("param.a = 'x'", param("a", "=", "x")),
        ("parameter.a = 'x'", param("a", "=", "x")),
        ("parameters.a = 'x'", param("a", "=", "x")),
        ("tag.a = 'x'", tag("a", "=", "x")),
        ("attribute.status = 'FINISHED'", attr("status", "=", "FINISHED")),
        ("attr.status = 'FINISHED'", attr("status", "=", "FINISHED")),
        ("run.status = 'FINISHED'", attr("status", "=", "FINISHED")),
        # bare attributes, as MLflow accepts them, and attribute aliases
        ("status = 'FINISHED'", attr("status", "=", "FINISHED")),
        ("run_name = 'x'", attr("run_name", "=", "x")),
        ("attributes.created > 5", attr("start_time", ">", 5)),
        ("attributes.`Run Name` = 'x'", attr("run_name", "=", "x")),
        ("`run name` = 'x'", attr("run_name", "=", "x")),
        ("attributes.run_id IN ('a', 'b')", attr("run_id", "IN", ("a", "b"))),
        ("attributes.user_id = 'ada'", attr("user_id", "=", "ada")),
        ("attributes.end_time <= 10", attr("end_time", "<=", 10)),
        ("attributes.artifact_uri LIKE 's3://%'", attr("artifact_uri", "LIKE", "s3://%")),
        ("attributes.lifecycle_stage = 'deleted'", attr("lifecycle_stage", "=", "deleted")),
        ("attributes.experiment_id = '3'", attr("experiment_id", "=", 3)),
        ("attributes.experiment_id IN ('1', 2)", attr("experiment_id", "IN", (1, 2))),
        # key quoting: backticks, double quotes, dots, spaces, doubled backticks
        ("metrics.`my metric` > 1", metric("my metric", ">", 1.0)),
        ("tags.\"mlflow.user\" = 'ada'", tag("mlflow.user", "=", "ada")),
        ("tags.mlflow.runName = 'x'", tag("mlflow.runName", "=", "x")),
        ("tags.`a.b c` = 'x'", tag("a.b c", "=", "x")),
        ("tags.`we``ird` = 'x'", tag("we`ird", "=", "x")),
        ("params.`val-loss/2` = 'x'", param("val-loss/2", "=", "x")),
        ("metrics.1st > 0", metric("1st", ">", 0.0)),
        ("metrics.`` > 0", metric("", ">", 0.0)),
        # string quoting and escapes
        ('params.a = "double"', param("a", "=", "double")),
        ("params.a = 'it''s'", param("a", "=", "it's")),
        ("params.a = 'it\\'s'", param("a", "=", "it's")),
        ('params.a = "say ""hi"""', param("a", "=", 'say "hi"')),
        ("params.a = 'back\\\\slash'", param("a", "=", "back\\slash")),
        ("params.a LIKE '50\\%'", param("a", "LIKE", "50\\%")),
        ("params.a = ''", param("a", "=", "")),
        ("params.a = 'naïve ✓'", param("a", "=", "naïve ✓")),
        # numbers
        ("metrics.a > -1", metric("a", ">", -1.0)),
        ("metrics.a > +2", metric("a", ">", 2.0)),
        ("metrics.a > 1.5e3", metric("a", ">", 1500.0)),
        ("metrics.a > -2.5E-3", metric("a", ">", -0.0025)),
        ("metrics.a > .5", metric("a", ">", 0.5)),
        ("metrics.a > 5.", metric("a", ">", 5.0)),
        ("metrics.a < inf", metric("a", "<", math.inf)),
        ("metrics.a > -Infinity", metric("a", ">", -math.inf)),
        ("attributes.start_time >= 1700000000000", attr("start_time", ">=", 1700000000000)),
        # conjunctions
        (
            "metrics.a > 1 and params.b = 'x' AND tags.c = 'y'",
            And((metric("a", ">", 1.0), param("b", "=", "x"), tag("c", "=", "y"))),
        ),
        (
            "metrics.a > 1 or metrics.b > 1",
            Or((metric("a", ">", 1.0), metric("b", ">", 1.0))),
        ),
        (
            "metrics.a > 1 OR metrics.b > 1 AND metrics.c > 1",
            Or((metric("a", ">", 1.0), And((metric("b", ">", 1.0), metric("c", ">", 1.0))))),
        ),
        (
            "(metrics.a > 1 OR metrics.b > 1) AND metrics.c > 1",
            And((Or((metric("a", ">", 1.0), metric("b", ">", 1.0))), metric("c", ">", 1.0))),
        ),
        ("((metrics.a > 1))", metric("a", ">", 1.0)),
        (
            "(metrics.a > 1 and metrics.b > 1) and metrics.c > 1",
            And((metric("a", ">", 1.0), metric("b", ">", 1.0), metric("c", ">", 1.0))),
        ),
        ("params.`and` = 'or'", param("and", "=", "or")),
        ("params.and = 'x'", param("and", "=", "x")),
    ],
)
def test_valid_filters(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "position", "hint"),
    [
        ("params.a = 'unterminated", 11, "close it"),
        ('params.a = "unterminated', 11, "close it"),
        ("metrics.`unterminated > 1", 8, "close it"),
        ("params.a = 'x\\'", 11, None),  # the backslash escapes the closing quote
        ("metrics.a >", 11, None),
        ("metrics.a", 9, "operators are"),
        ("metrics.a 5", 10, "operators are"),
        ("metrics.a ~ 1", 10, None),
        ("metrics.a == 1", 10, "use ="),
        ("metrics.a <> 1", 10, "use ="),
        ("metrics.a => 1", 11, None),
        ("metrics.a CONTAINS 1", 10, "operators are"),
        ("params.model = rf", 15, "string values need quotes: params.model = 'rf'"),
        ("params.model = NULL", 15, "IS NULL"),
        ("params.model = `rf`", 15, "backticks quote keys"),
        ("params.model = ('a')", 15, "IN"),
        ("params.model IN 'a'", 16, "IN takes a list"),
        ("params.model IN ()", 17, None),
        ("params.model IN ('a' 'b')", 21, "separate"),
        ("params.model IN ('a',)", 21, None),
        ("params.model NOT 'a'", 17, "NOT IN"),
        ("params.model IS 'a'", 16, "IS NULL"),
        ("params.model IS NOT 'a'", 20, "IS NULL"),
        ("foo.x = 1", 0, "prefix keys"),
        ("datasets.name = 'x'", 0, "prefix keys"),
        ("auc > 0.5", 0, "metrics.auc"),
        ("'a' = params.x", 0, "prefix keys"),
        ("metrics. > 1", 9, "backticks"),
        ("tags.'x' = 'a'", 5, "backticks"),
        ("metrics.a > 1 metrics.b > 2", 14, "AND"),
        ("metrics.a > 1 and", 17, None),
        ("metrics.a > 1 and and metrics.b > 1", 18, None),
        ("and metrics.a > 1", 0, None),
        ("metrics.a > 1)", 13, "unmatched"),
        ("(metrics.a > 1", 14, "'(' at position 0"),
        ("()", 1, None),
        ("metrics.a > 1abc", 12, None),
        ("metrics.a > 1.2.3", 12, None),
        ("metrics.a > 1e", 12, None),
        ("metrics.a > -", 12, None),
        ("metrics.val-loss > 1", 11, "backticks"),
        ("metrics.a > 1; DROP TABLE runs", 13, None),
        ("metrics.a > 1 -- comment", 14, None),
        ("(" * 40 + "metrics.a > 1" + ")" * 40, 32, "nest"),
    ],
)
def test_syntax_errors_point_at_the_offending_token(
    text: str, position: int, hint: str | None
) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    assert info.value.position == position, str(info.value)
    assert info.value.text == text
    assert info.value.code == "INVALID_PARAMETER_VALUE"
    if hint is not None:
        assert info.value.hint is not None
        assert hint in info.value.hint


def test_syntax_error_message_draws_a_pointer() -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter("params.model = rf")
    assert info.value.message.splitlines()[1:] == ["params.model = rf", " " * 15 + "^"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metrics.x = 'a'", "metrics compare with numbers"),
        ("metrics.x IN (1, 2)", "IN does not apply to metrics"),
        ("metrics.x LIKE 'a%'", "LIKE does not apply to metrics"),
        ("metrics.x ILIKE 'a%'", "ILIKE does not apply to metrics"),
        ("metrics.x IS NULL", "IS NULL does not apply to metrics"),
        ("metrics.x > NaN", "NaN"),
        ("params.lr = 0.1", "params compare with quoted strings"),
        ("params.lr > '0.1'", "> does not apply to params"),
        ("tags.t IN ('a', 1)", "tags compare with quoted strings"),
        ("attributes.status > 'A'", "> does not apply to attribute status"),
        ("attributes.status = 1", "compare with quoted strings"),
        ("attributes.start_time = 'yesterday'", "compare with numbers"),
        ("attributes.start_time LIKE '1%'", "LIKE does not apply"),
        ("attributes.start_time > 99999999999999999999", "too large"),
        ("attributes.end_time IS NULL", "IS NULL does not apply"),
        ("attributes.experiment_id = 'abc'", "not an experiment id"),
        ("attributes.experiment_id LIKE '1%'", "LIKE does not apply"),
        ("attributes.nope = 'x'", "unknown attribute 'nope'"),
        ("attributes.`mlflow.user` = 'x'", "unknown attribute"),
        ("params.a LIKE 'x\\\\'", "lone backslash"),
    ],
)
def test_semantic_errors_name_the_clause(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_filter(text)
    assert not isinstance(info.value, FilterSyntaxError)
    assert f"`{text}`" in info.value.message
    assert fragment in str(info.value)


def test_semantic_error_names_only_its_clause() -> None:
    with pytest.raises(InvalidArgumentError, match=r"`metrics\.b = 'x'`"):
        parse_filter("metrics.a > 1 and (metrics.b = 'x')")


def test_semantic_error_hint_suggests_the_fix() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_filter("params.lr = 0.1")
    assert info.value.hint == "quote the value: params.lr = '0.1'"


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (None, []),
        ([], []),
        (["metrics.auc DESC"], [OrderKey("metric", "auc", ascending=False)]),
        (["attributes.start_time"], [OrderKey("attribute", "start_time")]),
        (["params.lr ASC"], [OrderKey("param", "lr")]),
        (["tags.`x y` desc"], [OrderKey("tag", "x y", ascending=False)]),
        (['tags."mlflow.user"'], [OrderKey("tag", "mlflow.user")]),
        (["start_time desc"], [OrderKey("attribute", "start_time", ascending=False)]),
        (["created"], [OrderKey("attribute", "start_time")]),
        (["attr.`Run Name` ASC"], [OrderKey("attribute", "run_name")]),
        (
            ["metrics.auc DESC", "params.model"],
            [OrderKey("metric", "auc", ascending=False), OrderKey("param", "model")],
        ),
    ],
)
def test_order_by(items: list[str] | None, expected: list[OrderKey]) -> None:
    assert parse_order_by(items) == expected


@pytest.mark.parametrize(
    ("item", "position"),
    [
        ("metrics.auc DOWN", 12),
        ("metrics.auc DESC ASC", 17),
        ("", 0),
        ("foo.bar", 0),
        ("metrics.auc,", 11),
    ],
)
def test_order_by_syntax_errors(item: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by([item])
    assert info.value.position == position


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        (["attributes.nope"], "unknown attribute 'nope'"),
        (["metrics.a", "metrics.a DESC"], "twice"),
        (["created", "start_time"], "twice"),
    ],
)
def test_order_by_semantic_errors(items: list[str], fragment: str) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        parse_order_by(items)


def test_ast_is_frozen_and_hashable() -> None:
    node = parse_filter("params.a IN ('x', 'y') or metrics.b > 1")
    assert node is not None
    assert hash(node) == hash(parse_filter("params.a IN ('x', 'y') OR metrics.b > 1"))
    with pytest.raises(AttributeError):
        node.items = ()  # type: ignore[misc]


@pytest.mark.parametrize("offset", [0, 1, 100, 10**12])
def test_page_token_round_trip(offset: int) -> None:
    token = encode_page_token(offset)
    assert token.isascii()
    assert decode_page_token(token) == offset


def test_page_token_reads_mlflow_tokens() -> None:
    # MLflow's SearchUtils.create_page_token(50).
    assert decode_page_token("eyJvZmZzZXQiOiA1MH0=") == 50


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        "eyJvZmZzZXQiOiA1MH0",  # padding cut off
        "bm90IGpzb24=",  # "not json"
        "WzFd",  # [1]
        "eyJvZmZzZXQiOiAtMX0=",  # {"offset": -1}
        "eyJvZmZzZXQiOiAiMSJ9",  # {"offset": "1"}
        "eyJvZmZzZXQiOiB0cnVlfQ==",  # {"offset": true}
        "e30=",  # {}
        "/w==",  # a byte that is not UTF-8
        "eyJvZmZzZXQiOiAxZTMwfQ==",  # {"offset": 1e30}
        "eyJvZmZzZXQiOiAxMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDB9",  # {"offset": 10**26}
    ],
)
def test_invalid_page_token(token: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid page token"):
        decode_page_token(token)


def test_negative_offset_has_no_token() -> None:
    with pytest.raises(InvalidArgumentError):
        encode_page_token(-1)
