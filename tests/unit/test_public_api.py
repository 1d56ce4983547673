"""The public API is explicit: every exported name resolves, and the list stays sorted."""

from __future__ import annotations

import subprocess
import sys

import pytest

import loopline


def test_all_is_sorted() -> None:
    assert loopline.__all__ == sorted(loopline.__all__)


def test_every_exported_name_resolves() -> None:
    for name in loopline.__all__:
        assert getattr(loopline, name) is not None, name


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        loopline.no_such_thing  # noqa: B018


def test_import_is_lazy() -> None:
    # Importing loopline must not pull in the heavy parts: they load on first use.
    code = (
        "import sys, loopline; "
        "heavy = [m for m in ('sqlalchemy', 'pandas', 'numpy', 'httpx', 'fastapi', 'pyarrow') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
