"""``loopline --help`` answers fast because nothing heavy is on its import path.

Wall time is too noisy on a shared machine to assert; what decides it is which
modules load, so these tests look at ``sys.modules`` in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Each costs from tens of milliseconds (httpx) to a second (pandas) to import.
HEAVY = (
    "alembic",
    "blake3",
    "boto3",
    "fastapi",
    "httpx",
    "matplotlib",
    "numpy",
    "orjson",
    "pandas",
    "pyarrow",
    "pydantic",
    "sklearn",
    "sqlalchemy",
    "starlette",
    "uvicorn",
)
# What the CLI may load on its own: typer (with its vendored click) and rich.
CLI_ALLOWED = {
    "_distutils_hack",  # setuptools' startup hook, present in every venv
    "annotated_doc",
    "attr",  # rich.pretty imports attrs whenever it is installed (moto brings it)
    "click",
    "loopline",
    "markdown_it",
    "mdurl",
    "pygments",
    "rich",
    "shellingham",
    "typer",
    "typing_extensions",
}

_REPORT = (
    "import json, sys; "
    "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} "
    "- set(sys.stdlib_module_names))))"
)


def _third_party_after(code: str) -> set[str]:
    """Top-level non-stdlib modules loaded by ``code`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{_REPORT}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = set(json.loads(done.stdout.strip().splitlines()[-1]))
    # sysconfig's generated data module is part of the interpreter, not a package.
    return {m for m in found if m != "__main__" and not m.startswith("_sysconfigdata")}


def test_importing_the_cli_loads_typer_and_rich_only() -> None:
    loaded = _third_party_after("import loopline.cli.main")
    assert not loaded & set(HEAVY)
    assert loaded <= CLI_ALLOWED, f"unexpected imports: {sorted(loaded - CLI_ALLOWED)}"


def _run_cli(args: list[str]) -> str:
    return (
        "from loopline.cli.main import app\n"
        "try:\n"
        f"    app({args!r}, prog_name='loopline')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    )


@pytest.mark.parametrize("args", [["--help"], ["--version"]], ids=" ".join)
def test_root_help_and_version_load_typer_and_rich_only(args: list[str]) -> None:
    loaded = _third_party_after(_run_cli(args))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert loaded <= CLI_ALLOWED, f"unexpected imports: {sorted(loaded - CLI_ALLOWED)}"


# typer (0.29) coerces every non-flag option through a pydantic TypeAdapter, and the
# root's --tracking-uri is processed before a subcommand's help: pydantic is the
# one heavy module a subcommand's help may load.
PYDANTIC = {"pydantic", "pydantic_core", "annotated_types", "typing_inspection"}


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "--help"],
        ["runs", "list", "--help"],
        ["runs", "compare", "--help"],
        ["experiments", "--help"],
        ["db", "--help"],
        ["gc", "--help"],
        ["server", "--help"],
    ],
    ids=" ".join,
)
def test_subcommand_help_stays_light(args: list[str]) -> None:
    loaded = _third_party_after(_run_cli(args))
    assert not loaded & (set(HEAVY) - {"pydantic"}), sorted(loaded & set(HEAVY))
    unexpected = loaded - CLI_ALLOWED - PYDANTIC
    assert not unexpected, f"unexpected imports: {sorted(unexpected)}"


def test_importing_loopline_loads_nothing_heavy() -> None:
    loaded = _third_party_after("import loopline")
    assert loaded <= {"loopline", "_distutils_hack"}, sorted(loaded)
