"""opsbook's PromQL engine against Prometheus's own PromQL test scripts (v3.5.0).

Runs every ``*.test`` file of the conformance directory through the real runner and the real
engine and checks the targets of the metrics-engine issue:

- at least 95 % of the cases that ran (passed + failed) pass;
- skipped cases that do not need native histograms stay within 10 % of all cases that do not
  need them. Native histograms are declared unsupported (opsbook stores floats), and every skip
  the runner makes is for that reason, so this holds as long as nothing else gets skipped.

The directory is ``$OPSBOOK_CONFORMANCE_DIR``, else ``<repo>/../shared/conformance/promql``, else
``/work/shared/conformance/promql``. Without it the test skips loudly, and fails under ``CI=true``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opsbook.metrics.promqltest.runner import CaseStatus, FileResult, read_script, run_script

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REPO = Path(__file__).resolve().parents[2]
PASS_RATE_TARGET = 0.95
SKIP_RATE_LIMIT = 0.10


def conformance_dir() -> Path | None:
    configured = os.environ.get("OPSBOOK_CONFORMANCE_DIR")
    candidates = (
        [Path(configured)]
        if configured
        else [
            REPO.parent / "shared" / "conformance" / "promql",
            Path("/work/shared/conformance/promql"),
        ]
    )
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.test")):
            return candidate
    return None


def summary(results: list[FileResult]) -> str:
    lines = [
        f"{'FAIL' if r.failed else 'PASS'} {r.source}: "
        f"{r.passed} passed, {r.failed} failed, {r.skipped} skipped"
        for r in results
    ]
    failed = [c for r in results for c in r.cases if c.status is CaseStatus.FAILED]
    lines += [f"  {c.source}:{c.line}: {c.expr}\n      {c.reason}" for c in failed[:40]]
    if len(failed) > 40:
        lines.append(f"  … and {len(failed) - 40} more failed cases")
    return "\n".join(lines)


def test_prometheus_promql_test_suite() -> None:
    directory = conformance_dir()
    if directory is None:
        where = os.environ.get("OPSBOOK_CONFORMANCE_DIR") or (
            f"{REPO.parent / 'shared/conformance/promql'} or /work/shared/conformance/promql"
        )
        message = f"no PromQL conformance files (*.test) found in {where}"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires them (set OPSBOOK_CONFORMANCE_DIR)")
        pytest.skip(f"!!! SKIPPED: {message}. Set OPSBOOK_CONFORMANCE_DIR to run the suite.")

    results = [
        run_script(read_script(path, path.name)) for path in sorted(directory.glob("*.test"))
    ]

    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    skipped = sum(r.skipped for r in results)
    cases = sum(len(r.cases) for r in results)
    native = sum(r.native_histogram_cases for r in results)
    without_native = cases - native
    other_skips = skipped - native
    report = (
        f"{passed} passed, {failed} failed, {skipped} skipped "
        f"({native} need native histograms)\n{summary(results)}"
    )

    assert passed + failed > 0, report
    assert passed >= PASS_RATE_TARGET * (passed + failed), (
        f"pass rate {passed / (passed + failed):.1%} is below {PASS_RATE_TARGET:.0%}\n{report}"
    )
    assert other_skips <= SKIP_RATE_LIMIT * without_native, (
        f"{other_skips} of {without_native} cases without native histograms were skipped, "
        f"more than {SKIP_RATE_LIMIT:.0%}\n{report}"
    )
