"""Run loopline's benchmarks side by side with its peers, and print one table each.

    .venv/bin/python benchmarks/run.py [--only tracking] [--quick] [--repeat N] [--strict]

For each benchmark module in :data:`MODULES`:

1. each peer gets its own environment, ``.bench/<peer>-venv`` (``python3.11 -m venv``
   plus the module's ``PEERS`` requirements), created or topped up when needed;
2. the loopline side runs in this interpreter;
3. each peer side runs in its environment as ``python benchmarks/NAME.py --side PEER
   --json`` (a subprocess, killed with everything it started on timeout or Ctrl-C);
4. with ``--repeat N`` steps 2 and 3 alternate N times and each figure is the median
   (the machine is shared: medians of a few rounds are steadier than one);
5. a table shows each work item with loopline's figure, the peer's, the ratio, the
   goal and PASS/MISS; everything is written to ``.bench/results/NAME.json``.

Exit code: 0 when every side ran (even with a MISS), 1 when a side could not run
or an item failed, 3 with ``--strict`` when a goal was missed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402 - after the path set-up above
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

from benchmarks._harness import PGID_FILE_VAR, env_info  # noqa: E402

if TYPE_CHECKING:
    from types import ModuleType

BENCH_DIR = ROOT / ".bench"
RESULTS_DIR = BENCH_DIR / "results"
PEER_PYTHON = "python3.11"
PEER_TIMEOUT = 45 * 60.0
MARKER = ".loopline-bench-requirements"

# name -> module; each has the shape described in benchmarks/_harness.py. Coming:
# data (vs DVC), serving (vs `mlflow models serve`), monitoring (vs Evidently),
# pipelines (vs Metaflow).
MODULES = {
    "tracking": "benchmarks.tracking",
    "data": "benchmarks.data",
    "models": "benchmarks.models",
    "models_format": "benchmarks.models_format",
    "serving": "benchmarks.serving",
    "monitoring": "benchmarks.monitoring",
    "ui": "benchmarks.ui",
    "pipelines": "benchmarks.pipelines",
}

# A log file or a pipe (make bench | tee) still gets the whole table.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 170)


# -- peer environments ------------------------------------------------------------------
def _log_run(argv: list[str], log: Path, what: str) -> None:
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(argv)}\n")
        fh.flush()
        done = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{what} failed (exit {done.returncode}); see {log}\n{tail}")


def ensure_peer_env(peer: str, requirements: list[str]) -> Path:
    """The Python of ``.bench/<peer>-venv``, created and given ``requirements`` if missing."""
    venv = BENCH_DIR / f"{peer}-venv"
    python = venv / "bin" / "python"
    marker = venv / MARKER
    installed = set(marker.read_text().split("\n")) if marker.exists() else set()
    if python.exists() and set(requirements) <= installed:
        return python
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    log = BENCH_DIR / f"{peer}-venv-setup.log"
    if not python.exists():
        base = shutil.which(PEER_PYTHON)
        if base is None:
            base = sys.executable
            console.print(f"[yellow]{PEER_PYTHON} not found; the {peer} venv uses {base}[/]")
        console.print(f"[bold]Creating {venv.relative_to(ROOT)}[/] ({base} -m venv)")
        _log_run([base, "-m", "venv", str(venv)], log, f"creating {venv}")
    console.print(f"[bold]Installing into {venv.relative_to(ROOT)}:[/] {' '.join(requirements)}")
    started = time.perf_counter()
    _log_run(
        [str(python), "-m", "pip", "install", "--quiet", *requirements],
        log,
        f"pip install {' '.join(requirements)}",
    )
    console.print(f"  done in {time.perf_counter() - started:.0f} s (log: {log.relative_to(ROOT)})")
    marker.write_text("\n".join(sorted(installed | set(requirements))))
    return python


# -- running the sides --------------------------------------------------------------------
def _progress(side: str) -> Any:
    def report(message: str) -> None:
        console.print(Text.assemble((f"[{side}] ", "dim"), message))

    return report


def run_loopline_side(module: ModuleType, sizes: dict[str, int]) -> dict[str, Any]:
    console.rule(f"{module.NAME}: loopline side (this interpreter)")
    results = module.SIDES["loopline"](sizes, _progress("loopline"))
    return {
        "benchmark": module.NAME,
        "side": "loopline",
        "sizes": sizes,
        "env": env_info(module.PACKAGES["loopline"]),
        "results": results,
    }


def _stop_process_group(proc: subprocess.Popen[str], pgids: Path) -> None:
    """SIGTERM the side (it stops its servers on the way out), then SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    stuck = proc.poll() is None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if stuck and pgids.exists():  # it could not stop its servers: they have their own groups
        for line in pgids.read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                os.killpg(int(line), signal.SIGKILL)


def run_peer_side(
    module: ModuleType, peer: str, python: Path, quick: bool, timeout: float
) -> dict[str, Any]:
    """Run ``module`` as a script in the peer's venv; its JSON document."""
    console.rule(f"{module.NAME}: {peer} side ({python.parent.parent.relative_to(ROOT)})")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS_DIR / f"{module.NAME}-{peer}.log"
    argv = [str(python), str(Path(module.__file__)), "--side", peer, "--json"]
    if quick:
        argv.append("--quick")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"  # peers call tools by name
    env.update(getattr(module, "PEER_ENV", {}).get(peer, {}))
    pgids = RESULTS_DIR / f".{module.NAME}-{peer}.pgids"
    pgids.unlink(missing_ok=True)
    env[PGID_FILE_VAR] = str(pgids)
    report = _progress(peer)
    with log_path.open("a") as log:
        log.write(f"\n===== {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} {argv}\n")
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        out: list[str] = []
        prefix = f"[{peer}] "

        def pump_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                log.write(line)
                log.flush()
                if line.startswith(prefix):
                    report(line[len(prefix) :].rstrip())

        def pump_stdout() -> None:
            assert proc.stdout is not None
            out.append(proc.stdout.read())

        threads = [threading.Thread(target=f, daemon=True) for f in (pump_stderr, pump_stdout)]
        for thread in threads:
            thread.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_process_group(proc, pgids)
            raise RuntimeError(
                f"the {peer} side ran over {timeout:.0f} s; log: {log_path}"
            ) from None
        except BaseException:
            _stop_process_group(proc, pgids)
            raise
        finally:
            for thread in threads:
                thread.join(timeout=10)
    pgids.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the {peer} side exited with {proc.returncode}; log: {log_path}")
    text = "".join(out).strip().splitlines()
    if not text:
        raise RuntimeError(f"the {peer} side printed no results; log: {log_path}")
    document: dict[str, Any] = json.loads(text[-1])
    return document


# -- the table ------------------------------------------------------------------------------
def _number(value: float, unit: str) -> str:
    if unit in ("points/s", "runs/s"):
        text = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
        return f"{text} {unit}"
    if unit == "µs":
        return f"{value:,.2f} µs" if value < 10 else f"{value:,.0f} µs"
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.1f} {unit}"


def _cell(fig: dict[str, Any] | None) -> Text:
    if not fig:
        return Text("—", style="dim")
    if "error" in fig:
        return Text("error", style="bold red")
    return Text.assemble(_number(fig["value"], fig["unit"]), (f"\nN={fig['n']:,}", "dim"))


def _ratio(speedup: float | None) -> Text:
    if speedup is None:
        return Text("—", style="dim")
    if speedup >= 1:
        digits = 0 if speedup >= 10 else 1
        return Text(f"{speedup:,.{digits}f}x faster", style="green" if speedup >= 2 else "")
    return Text(f"{1 / speedup:,.1f}x slower", style="red")


def _verdict(row: dict[str, Any]) -> Text:
    if row["goal"] is None:
        return Text("")
    if row["pass"] is None:
        return Text("n/a", style="yellow")
    return Text("PASS", style="bold green") if row["pass"] else Text("MISS", style="bold red")


def _env_line(doc: dict[str, Any]) -> str:
    env = doc["env"]
    pkgs = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    load = "/".join(f"{x:.1f}" for x in env.get("load_average", []))
    return (
        f"{doc['side']}: Python {env['python']} ({env['executable']}) · {pkgs}"
        f" · load average after its run {load} (1/5/15 min)"
    )


def render(module: ModuleType, report: dict[str, Any]) -> None:
    sides = report["sides"]
    peers = ", ".join(
        f"{p} {sides[p]['env']['packages'].get(p, '?')}" if p in sides else f"{p} (did not run)"
        for p in module.PEERS
    )
    table = Table(
        title=f"{module.NAME}: loopline {report['loopline_version']} vs {peers}",
        show_lines=True,
        title_style="bold",
    )
    table.add_column("Work item", min_width=36, overflow="fold")
    table.add_column("loopline", justify="right", no_wrap=True)
    table.add_column(" / ".join(module.PEERS), justify="right", no_wrap=True)
    table.add_column("loopline vs peer", justify="right", no_wrap=True)
    table.add_column("Goal", no_wrap=True)
    table.add_column("Result", justify="center", no_wrap=True, min_width=6)
    for row in report["rows"]:
        theirs = row["theirs"] if row["theirs_key"] else None
        table.add_row(
            row["label"],
            _cell(row["loopline"]),
            _cell(theirs),
            _ratio(row["speedup"]),
            row["goal"] or "",
            _verdict(row),
        )
    console.print(table)
    first = sides.get("loopline") or next(iter(sides.values()), None)
    if first:
        env = first["env"]
        console.print(
            f"Machine: {env['cpus']} CPUs ({env['cpus_usable']} usable), {env['platform']}, "
            f"{env['machine']}, SQLite {env['sqlite']}"
        )
    for doc in sides.values():
        console.print(_env_line(doc))
    if report["quick"]:
        console.print("[yellow]--quick: sizes divided by 10; the goals are set for full sizes.[/]")
    notes = []
    for row in report["rows"]:
        for who, fig in (("loopline", row["loopline"]), (row["peer"], row["theirs"])):
            if fig and fig.get("error"):
                notes.append(f"[red]{who} error[/] in “{row['label'].strip()}”: {fig['error']}")
    seen: set[tuple[str, str]] = set()
    for name, doc in sides.items():
        for key, fig in doc["results"].items():
            if fig.get("note") and (name, key) not in seen:
                seen.add((name, key))
                notes.append(f"{name} {key}: {fig['note']}")
    for error in report["errors"]:
        notes.append(f"[red]{error}[/]")
    if notes:
        console.print("Notes:")
        for note in notes:
            console.print(f"  • {note}")


def evaluate(
    module: ModuleType, sides: dict[str, dict[str, Any]], sizes: dict[str, int]
) -> list[dict[str, Any]]:
    ours = sides.get("loopline", {}).get("results", {})
    rows = []
    for row in module.ROWS:
        theirs = sides.get(row.peer, {}).get("results", {})
        evaluated = row.evaluate(ours, theirs)
        evaluated["label"] = row.label.format(**sizes)
        evaluated["theirs_key"] = row.theirs
        evaluated["loopline"] = evaluated["loopline"] or None
        evaluated["theirs"] = evaluated["theirs"] or None
        rows.append(evaluated)
    return rows


def doc_error(fig: dict[str, Any]) -> bool:
    return fig.get("error") not in (None, "not measured")


def merge_rounds(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's document whose figures are the medians over its rounds."""
    if len(docs) == 1:
        return docs[0]
    merged = dict(docs[-1])
    keys = list(dict.fromkeys(k for doc in docs for k in doc["results"]))
    results: dict[str, Any] = {}
    for key in keys:
        figs = [doc["results"].get(key) or {"error": "not measured"} for doc in docs]
        good = [f for f in figs if "value" in f]
        if not good:  # the last real error says most
            results[key] = next((f for f in reversed(figs) if doc_error(f)), figs[-1])
            continue
        values = sorted(f["value"] for f in good)
        unit = good[0]["unit"]
        note = (
            f"median of {len(good)} rounds, "
            f"{_number(values[0], unit)} to {_number(values[-1], unit)}"
        )
        if len(good) < len(figs):
            note += f"; failed in {len(figs) - len(good)}"
        if good[0].get("note"):
            note += f"; {good[0]['note']}"
        results[key] = {**good[0], "value": statistics.median(values), "note": note}
    merged["results"] = results
    return merged


# -- main -------------------------------------------------------------------------------------
def run_module(name: str, args: argparse.Namespace) -> dict[str, Any]:
    module = importlib.import_module(MODULES[name])
    sizes = module.sizes_for(args.quick)
    started = dt.datetime.now(dt.UTC)
    errors: list[str] = []
    pythons: dict[str, Path] = {}
    for peer, requirements in module.PEERS.items():  # set up first: a failure shows early
        try:
            pythons[peer] = ensure_peer_env(peer, requirements)
        except (RuntimeError, OSError) as exc:
            errors.append(f"{peer} environment: {exc}")
            console.print(f"[red]Could not set up {peer}:[/] {exc}")
    for peer in pythons:  # each run starts its peers' logs afresh; rounds append
        (RESULTS_DIR / f"{name}-{peer}.log").unlink(missing_ok=True)
    rounds: dict[str, list[dict[str, Any]]] = {"loopline": [], **{p: [] for p in pythons}}
    for number in range(1, args.repeat + 1):  # sides alternate, so both see the same load
        if args.repeat > 1:
            console.rule(f"[bold]{name}: round {number} of {args.repeat}")
        rounds["loopline"].append(run_loopline_side(module, sizes))
        for peer, python in pythons.items():
            try:
                doc = run_peer_side(module, peer, python, args.quick, args.peer_timeout)
                rounds[peer].append(doc)
            except (RuntimeError, OSError, ValueError) as exc:
                errors.append(f"{peer} side, round {number}: {exc}")
                console.print(f"[red]The {peer} side failed:[/] {exc}")
    sides = {side: merge_rounds(docs) for side, docs in rounds.items() if docs}
    import loopline

    report = {
        "benchmark": name,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "command": " ".join([sys.executable, *sys.argv]),
        "quick": args.quick,
        "sizes": sizes,
        "loopline_version": loopline.__version__,
        "sides": sides,
        "repeat": args.repeat,
        "rows": evaluate(module, sides, sizes),
        "errors": errors,
        "rounds": rounds,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.rule(f"{name}: results")
    render(module, report)
    console.print(f"Written to {out.relative_to(ROOT)} ({report['seconds']:.0f} s in all)")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="loopline vs its peers, side by side in one run.",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated benchmarks to run (of: {', '.join(MODULES)}); default all",
    )
    parser.add_argument("--quick", action="store_true", help="sizes divided by 10")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a goal is missed")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run both sides N times, alternating, and report medians (default 1)",
    )
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=PEER_TIMEOUT,
        help=f"seconds a peer side may run (default {PEER_TIMEOUT:.0f})",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = [n.strip() for n in args.only.split(",")] if args.only else list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(MODULES)})")
    failed = missed = False
    for name in names:
        report = run_module(name, args)
        rows = report["rows"]
        failed |= bool(report["errors"]) or any(
            (r["loopline"] or {}).get("error") or (r["theirs"] or {}).get("error") for r in rows
        )
        missed |= any(r["pass"] is False for r in rows)
    if failed:
        return 1
    return 3 if args.strict and missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print(
            "[yellow]Interrupted: the peer side and every server it started are stopped.[/]"
        )
        sys.exit(130)
