"""Fuzz every operation of the OpenAPI document with schemathesis, on a real server.

Each generated request's answer is checked by schemathesis: not a 5xx, a status code
the document lists, a documented content type, and a body that validates against the
documented schema of that status (errors included). Bounded: a few requests per
operation and an overall time budget.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import ServerProcess

CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)
BUDGET_SECONDS = 45.0


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    found = [line.strip() for line in text.splitlines() if line.strip().startswith("- ")]
    return found[0] if found else text[:200]


def _fuzz(operation: Any, url: str, failures: dict[tuple[str, str, str], str]) -> None:
    method, path = operation.method.upper(), operation.path

    @given(case=operation.as_strategy())
    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: Any) -> None:
        response = case.call(base_url=url, timeout=30)
        for check in CHECKS:
            try:
                case.validate_response(response, checks=[check])
            except BaseException as error:  # schemathesis raises exception groups
                failures[(check.__name__, method, path)] = (
                    f"{response.status_code} {_first_line(error)}: {case.as_curl_command()[:300]}"
                )

    fuzz()


def test_every_operation_answers_as_documented(
    start_server: Callable[..., ServerProcess],
) -> None:
    failures: dict[tuple[str, str, str], str] = {}
    deadline = time.monotonic() + BUDGET_SECONDS
    operations = 0
    url = start_server().url  # a process of its own: the fuzzer does not slow it down
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    every = [result.ok() for result in schema.get_all_operations()]
    for operation in every:
        if time.monotonic() > deadline:
            break
        operations += 1
        _fuzz(operation, url, failures)
    assert len(every) > 100
    assert operations == len(every), "the time budget ran out before every operation was tried"
    report = [f"{check} {method} {path}: {why}" for (check, method, path), why in failures.items()]
    assert not report, "\n".join(sorted(report))
