"""``loopline pipeline run`` without typer: the command line's fast path.

A fully cached re-run of a 10-step pipeline has a budget of 1.5 s through the
command line, and building the typer app (every command group, with pydantic
validating each parameter) costs more CPU than the run itself. So
:func:`loopline.cli.main.main` hands ``loopline pipeline run ...`` to
:func:`fast_main` first: the plain forms are parsed and run here; anything else
(``--help``, an unknown option, a missing value) returns None and typer answers,
with its usual messages. The typer command in :mod:`loopline.cli.pipeline` calls
the same :func:`run_command`, so both paths behave and print alike.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.config import Settings
    from loopline.pipelines.runner import Runner

__all__ = ["fast_main", "parse_run", "read_config", "run_command", "split_pairs"]

_FLAGS = {"--no-cache": "no_cache", "--json": "as_json"}
_VALUED = {
    "--param": "param",
    "-p": "param",
    "--executor": "executor",
    "-x": "executor",
    "--threshold": "threshold",
    "-t": "threshold",
    "--config": "config",
    "-c": "config",
    "--ray-address": "ray_address",
    "--firing": "firing",
}
_REPEATED = ("param", "threshold")


def split_pairs(values: list[str] | None, what: str) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``.

    >>> split_pairs(["lr=0.1", "name=a=b"], "--param")
    {'lr': '0.1', 'name': 'a=b'}
    """
    from loopline.errors import InvalidArgumentError

    found: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgumentError(f"{what} {item!r} is not KEY=VALUE")
        found[key.strip()] = value
    return found


def read_config(path: Path | None) -> dict[str, Any]:
    """A config file's ``params`` and ``thresholds`` (TOML, JSON or YAML)."""
    if path is None:
        return {}
    from loopline.errors import InvalidArgumentError

    try:
        text = path.read_text()
        if path.suffix == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            import json

            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("pipeline"), dict):
        # A project file (loopline.toml from `loopline init`) keeps them under [pipeline].
        data = data["pipeline"]
    if not isinstance(data, dict) or set(data) - {"params", "thresholds"}:
        raise InvalidArgumentError(f"{path} must hold a mapping with `params` and/or `thresholds`")
    return data


def parse_run(args: list[str]) -> dict[str, Any] | None:
    """``pipeline run`` arguments in their plain forms; None for anything else.

    >>> parse_run(["flow.py", "-p", "n=2", "--param=c=1", "--no-cache", "-x", "inline"])
    {'param': ['n=2', 'c=1'], 'threshold': [], 'no_cache': True, 'executor': 'inline', 'target': 'flow.py'}
    >>> parse_run(["flow.py", "--help"]) is None, parse_run([]) is None
    (True, True)
    """
    found: dict[str, Any] = {"param": [], "threshold": []}
    positional: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        key, eq, value = token.partition("=")
        if token in _FLAGS:
            found[_FLAGS[token]] = True
        elif key in _VALUED and (eq or i + 1 < len(args)):
            if not eq:
                i += 1
                value = args[i]
            name = _VALUED[key]
            if name in _REPEATED:
                found[name].append(value)
            elif name in found:
                return None
            else:
                found[name] = value
        elif token.startswith("-") and token != "-":
            return None  # --help, a typo: typer answers
        else:
            positional.append(token)
        i += 1
    if len(positional) != 1:
        return None
    if "firing" in found and not str(found["firing"]).isdigit():
        return None
    if "config" in found and not Path(found["config"]).is_file():
        return None  # typer says the file does not exist
    found["target"] = positional[0]
    return found


def run_command(
    settings: Settings,
    target: str,
    *,
    param: list[str] | None = None,
    executor: str | None = None,
    no_cache: bool = False,
    threshold: list[str] | None = None,
    config: Path | str | None = None,
    ray_address: str | None = None,
    firing: int | str | None = None,
    as_json: bool = False,
) -> None:
    """Run a pipeline as ``loopline pipeline run`` does; raises LooplineError on failure."""
    from loopline.config import reset_settings
    from loopline.errors import LooplineError
    from loopline.pipelines.loader import load_pipeline
    from loopline.pipelines.runner import Runner

    reset_settings(settings)
    cfg = read_config(None if config is None else Path(config))
    pipe = load_pipeline(target)
    texts = {str(k): str(v) for k, v in (cfg.get("params") or {}).items()}
    texts.update(split_pairs(param, "--param"))
    params = pipe.resolve_params(text=texts)
    thresholds = {str(k): str(v) for k, v in (cfg.get("thresholds") or {}).items()}
    thresholds.update(split_pairs(threshold, "--threshold"))
    firing_id = None if firing is None else int(firing)
    runner = Runner(
        pipe,
        params=params,
        executor=executor or pipe.executor,
        cache=not no_cache,
        thresholds=thresholds,
        ray_address=ray_address,
        target=f"{os.path.abspath(target.split(':')[0])}:{pipe.name}",
        firing_id=firing_id,
        settings=settings,
    )
    try:
        # Under --json stdout carries the JSON alone: what steps print goes to stderr.
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            outcome = runner.run()
    except LooplineError as exc:
        _after_firing(settings, firing_id, runner, exc)
        report = getattr(exc, "report", None)
        if report:
            from loopline.pipelines.gates import format_report

            sys.stderr.write(format_report(report) + "\n")
        raise
    _after_firing(settings, firing_id, runner, None)
    if as_json:
        import json

        body = {"run_id": outcome.run_id, "status": outcome.status, "steps": outcome.steps}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    cached = sum(1 for s in outcome.steps.values() if s == "cached")
    sys.stdout.write(
        f"pipeline {pipe.name}: {outcome.status} (run {outcome.run_id}; "
        f"{len(outcome.steps)} steps, {cached} from cache)\n"
    )


def _after_firing(
    settings: Settings, firing: int | None, runner: Runner, exc: Exception | None
) -> None:
    if firing is None:
        return
    from loopline.pipelines.triggers import record_outcome
    from loopline.store.metadata import Database

    db = Database(settings.metadata_url)
    try:
        record_outcome(
            db,
            firing,
            status="failed" if exc is not None else "succeeded",
            run_id=getattr(runner, "run_id", None),
            message="" if exc is None else str(exc),
        )
    finally:
        db.close()


def fast_main(args: list[str]) -> int | None:
    """Run ``loopline pipeline run ...`` without typer; the exit code, or None: not handled."""
    if args[:1] != ["run"]:
        return None
    parsed = parse_run(args[1:])
    if parsed is None:
        return None
    from loopline.config import Settings
    from loopline.errors import LooplineError

    target = parsed.pop("target")
    try:
        run_command(Settings.from_env(), target, **parsed)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except LooplineError as exc:
        from loopline.cli._errors import exit_code_for, report_error  # errors need not be fast

        report_error(exc)
        return exit_code_for(exc)
    return 0
