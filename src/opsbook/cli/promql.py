"""``opsbook promql test``: run PromQL test scripts against opsbook's PromQL engine.

The scripts are written in Prometheus's test language (``load``/``clear``/``eval``, see
``TEST-LANGUAGE.md`` beside Prometheus's own ``*.test`` files), so Prometheus's test suite doubles
as opsbook's conformance suite, and users can write their own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

# The runner (NumPy, the PromQL parser) is imported when a command runs, not at every start of
# the CLI.
if TYPE_CHECKING:
    from opsbook.metrics.promqltest.runner import CaseResult, EngineFactory, FileResult
    from opsbook.metrics.promqltest.script import Script, ScriptError

app = typer.Typer(
    help="PromQL tools: test the engine with PromQL test scripts.", no_args_is_help=True
)

engine_factory: EngineFactory | None = None
"""The engine the scripts run against; None is opsbook's own (tests put a test double here)."""

EXIT_FAILED_CASES = 1
EXIT_INVALID_SCRIPT = 2


@app.callback()
def _group() -> None:
    """PromQL tools: test the engine with PromQL test scripts."""


@app.command("test")
def test(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE", help="PromQL test scripts in Prometheus's *.test language."),
    ],
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="List every failed case and every skipped one."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout instead.")
    ] = False,
) -> None:
    """Run PromQL test scripts against opsbook's PromQL engine.

    Each eval is one case: passed, failed, or skipped when it needs native histograms.

    Exit status: 0 when no case failed, 1 when one did, 2 when a file is unreadable or invalid.
    """
    from opsbook.metrics.promqltest.runner import opsbook_engine, read_script, run_script
    from opsbook.metrics.promqltest.script import ScriptError

    scripts: list[Script] = []
    errors: list[ScriptError] = []
    for path, name in zip(files, _display_names(files), strict=True):
        try:
            scripts.append(read_script(path, name))
        except ScriptError as exc:
            errors.append(exc)
    if errors:
        _report_errors(errors, as_json)
        raise typer.Exit(EXIT_INVALID_SCRIPT)

    engine = engine_factory or opsbook_engine
    with _progress(sum(len(script.evals) for script in scripts)) as advance:
        results = [run_script(script, engine, advance) for script in scripts]

    if as_json:
        typer.echo(_json(_document(results)))
    else:
        for result in results:
            _print_file(result, verbose)
        typer.echo(_totals_line(results))
    if any(result.failed for result in results):
        raise typer.Exit(EXIT_FAILED_CASES)


def _display_names(paths: Sequence[Path]) -> list[str]:
    """File names as short as they can be: the base name unless two files share it."""
    base_names = [path.name for path in paths]
    return [path.name if base_names.count(path.name) == 1 else str(path) for path in paths]


def _report_errors(errors: Sequence[ScriptError], as_json: bool) -> None:
    if as_json:
        document = {
            "errors": [
                {"file": e.source, "line": e.line, "message": _safe(e.message)} for e in errors
            ]
        }
        typer.echo(_json(document))
        return
    for error in errors:
        typer.echo(f"error: {_safe(str(error))}", err=True)
    typer.echo(
        "No case was run. Fix the files above; the test language is described in "
        "Prometheus's promql/promqltest/README.md (TEST-LANGUAGE.md).",
        err=True,
    )


@contextmanager
def _progress(total: int) -> Iterator[Callable[[CaseResult], None] | None]:
    """A progress bar on stderr, when stderr is a terminal; else nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("promql test", total=total)

        def advance(case: CaseResult) -> None:
            progress.update(task, advance=1, description=case.source)

        yield advance


def _counts(passed: int, failed: int, skipped: int) -> str:
    return f"{passed} passed, {failed} failed, {skipped} skipped"


def _print_file(result: FileResult, verbose: bool) -> None:
    from opsbook.metrics.promqltest.runner import CaseStatus

    verdict = "FAIL" if result.failed else "PASS"
    counts = _counts(result.passed, result.failed, result.skipped)
    typer.echo(f"{verdict} {result.source}: {counts}")
    if not verbose:
        return
    for case in result.cases:
        if case.status is CaseStatus.PASSED:
            continue
        label = case.status.value.upper()
        typer.echo(f"  {case.source}:{case.line}: {label} {_safe(case.expr)}")
        typer.echo(f"      {_safe(case.reason)}")


def _totals_line(results: Sequence[FileResult]) -> str:
    return _counts(
        sum(r.passed for r in results),
        sum(r.failed for r in results),
        sum(r.skipped for r in results),
    )


def _document(results: Sequence[FileResult]) -> dict[str, Any]:
    return {
        "files": [
            {
                "file": result.source,
                "status": "fail" if result.failed else "pass",
                "passed": result.passed,
                "failed": result.failed,
                "skipped": result.skipped,
                "cases": [
                    {
                        "line": case.line,
                        "kind": case.kind,
                        "expr": _safe(case.expr),
                        "status": case.status.value,
                        "reason": _safe(case.reason) if case.reason else None,
                    }
                    for case in result.cases
                ],
            }
            for result in results
        ],
        "totals": {
            "passed": sum(r.passed for r in results),
            "failed": sum(r.failed for r in results),
            "skipped": sum(r.skipped for r in results),
        },
    }


def _safe(text: str) -> str:
    # Label values written with \x escapes may hold bytes that are not UTF-8 (kept as lone
    # surrogates); show them escaped instead of failing to print.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _json(document: dict[str, Any]) -> str:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
