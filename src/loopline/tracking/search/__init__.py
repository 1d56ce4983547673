"""Run search: MLflow's filter language, parsed to an AST and compiled to SQL.

>>> from loopline.tracking.search import parse_filter
>>> parse_filter("tags.`mlflow.user` = 'ada'")
Comparison(entity='tag', key='mlflow.user', op='=', value='ada')

loopline accepts MLflow's filters and a little more: OR and parentheses (AND binds
tighter), case-insensitive entity prefixes, IN / NOT IN on every string field,
``inf`` as a number, and ``attributes.experiment_id`` and
``attributes.lifecycle_stage``.
"""

from loopline.tracking.search.compile import build_search_query, compile_filter, compile_order_by
from loopline.tracking.search.paging import decode_page_token, encode_page_token
from loopline.tracking.search.parser import (
    And,
    Comparison,
    Node,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)

__all__ = [
    "And",
    "Comparison",
    "Node",
    "Or",
    "OrderKey",
    "build_search_query",
    "compile_filter",
    "compile_order_by",
    "decode_page_token",
    "encode_page_token",
    "parse_filter",
    "parse_order_by",
]
