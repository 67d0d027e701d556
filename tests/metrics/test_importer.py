"""``import_openmetrics`` and ``opsbook import``: real files into a real embedded store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from opsbook.cli.main import app
from opsbook.config import load_config
from opsbook.metrics import importer
from opsbook.metrics.embedded import EmbeddedStore
from opsbook.metrics.importer import ImportReport, OpenMetricsImportError, import_openmetrics
from opsbook.metrics.memory import MemoryStore
from opsbook.metrics.model import Labels, Matcher, MatchType, labels_from_mapping
from opsbook.metrics.runtime import metrics_store_path
from opsbook.metrics.store_api import SampleStore

T0 = 1_700_000_000  # seconds
STEPS = 20
ALL_TIME = (0, 2**62)


def lbl(name: str, **labels: str) -> Labels:
    return labels_from_mapping({"__name__": name, **labels})


def history() -> tuple[str, dict[Labels, list[tuple[int, float]]]]:
    """An OpenMetrics backfill file and the samples it holds, per series."""
    expected: dict[Labels, list[tuple[int, float]]] = {}
    lines = ["# HELP http_requests Requests handled.", "# TYPE http_requests counter"]
    for route in ("/a", "/b"):
        series = lbl("http_requests_total", route=route, code="200")
        for i in range(STEPS):
            stamp_ms = (T0 + i * 15) * 1000 + 250
            value = float(i * (3 if route == "/b" else 1))
            lines.append(
                f'http_requests_total{{route="{route}",code="200"}} {value} {stamp_ms / 1000:.3f}'
                + (' # {trace_id="t1"} 0.2' if i == 5 else "")
            )
            expected.setdefault(series, []).append((stamp_ms, value))
        lines.append(f'http_requests_created{{route="{route}",code="200"}} {T0} {T0}')
    lines += ["# TYPE temperature_celsius gauge", "# UNIT temperature_celsius celsius"]
    for i in range(STEPS):
        value = 20.5 + i if i != 7 else float("nan")
        lines.append(f"temperature_celsius {'NaN' if i == 7 else value} {T0 + i * 15}")
        expected.setdefault(lbl("temperature_celsius"), []).append(((T0 + i * 15) * 1000, value))
    lines.append("# EOF")
    return "\n".join(lines) + "\n", expected


def assert_holds(store: SampleStore, expected: dict[Labels, list[tuple[int, float]]]) -> None:
    """The store holds exactly the expected series, each with exactly its samples."""
    any_name = [Matcher("__name__", MatchType.REGEX, ".+")]
    assert sorted(store.series([any_name], *ALL_TIME)) == sorted(expected)
    for labels, samples in expected.items():
        found = store.select([Matcher.equal(name, value) for name, value in labels], *ALL_TIME)
        assert [data.labels for data in found] == [labels]
        assert found[0].timestamps.tolist() == [t for t, _ in samples]
        np.testing.assert_array_equal(found[0].values, np.array([v for _, v in samples]))


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "history.om"
    path.write_text(history()[0])
    return path


def test_a_file_is_imported_into_the_embedded_store_and_reads_back(
    tmp_path: Path, data_file: Path
) -> None:
    _, expected = history()
    with EmbeddedStore.open(tmp_path / "metrics.duckdb", retention=None) as store:
        report = import_openmetrics(data_file, store)
        assert_holds(store, expected)
    assert report == ImportReport(
        samples=3 * STEPS,
        series=3,
        min_ts_ms=T0 * 1000,
        max_ts_ms=(T0 + (STEPS - 1) * 15) * 1000 + 250,
        duration_s=report.duration_s,
    )
    assert report.duration_s > 0
    # The import is durable: a new handle on the file sees the same samples.
    with EmbeddedStore.open(tmp_path / "metrics.duckdb", retention=None) as reopened:
        assert_holds(reopened, expected)


def test_created_samples_are_skipped(tmp_path: Path, data_file: Path) -> None:
    with EmbeddedStore.open(tmp_path / "metrics.duckdb", retention=None) as store:
        import_openmetrics(data_file, store)
        created = store.select([Matcher.equal("__name__", "http_requests_created")], *ALL_TIME)
    assert created == []


def test_a_file_larger_than_a_batch_is_read_twice_and_imports_the_same(
    tmp_path: Path, data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, expected = history()
    monkeypatch.setattr(importer, "READ_BYTES", 256)  # many blocks, lines cut across them
    calls: list[tuple[int, int]] = []
    with EmbeddedStore.open(tmp_path / "metrics.duckdb", retention=None) as store:
        report = import_openmetrics(
            data_file, store, batch_samples=7, progress=lambda *call: calls.append(call)
        )
        assert_holds(store, expected)
    assert report.samples == 3 * STEPS and report.series == 3
    size = data_file.stat().st_size
    assert calls[-1] == (2 * size, 2 * size)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(calls) > 10


def test_a_store_without_append_series_gets_the_samples_through_append(data_file: Path) -> None:
    _, expected = history()
    store = MemoryStore()
    assert not hasattr(store, "append_series")
    report = import_openmetrics(data_file, store, batch_samples=5)
    assert report.series == 3
    assert_holds(store, expected)


def test_progress_reaches_the_file_size_in_one_reading(tmp_path: Path, data_file: Path) -> None:
    calls: list[tuple[int, int]] = []
    import_openmetrics(data_file, MemoryStore(), progress=lambda *call: calls.append(call))
    size = data_file.stat().st_size
    assert calls and calls[-1] == (size, size)


def test_a_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "short.om"
    path.write_text(f"a 1 {T0}\n# EOF")
    store = MemoryStore()
    assert import_openmetrics(path, store).samples == 1


# --- errors --------------------------------------------------------------------------------

GOOD = f"good_total 1 {T0}\n"

BAD_FILES = {
    "no timestamp": (GOOD + "good_total 2\n# EOF\n", 2, "no timestamp"),
    "no eof": (GOOD + GOOD, 2, "no '# EOF' at the end"),
    "empty file": ("", 1, "no '# EOF' at the end"),
    "html": ("<html><body>502 Bad Gateway</body></html>\n", 1, "HTML"),
    "bad value": (GOOD + f"good_total one {T0}\n# EOF\n", 2, "invalid value 'one'"),
    "data after eof": (GOOD + "# EOF\n" + GOOD, 3, "after '# EOF'"),
    "text-format timestamp": (GOOD + "good_total 2 1700000000000 5\n# EOF\n", 2, "unexpected"),
    "bad utf-8": (GOOD.encode() + b'x{a="\xff"} 1 1\n# EOF\n', 2, "not valid UTF-8"),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_is_reported_as_file_and_line_and_nothing_is_written(
    tmp_path: Path, case: tuple[str | bytes, int, str]
) -> None:
    content, line, reason = case
    path = tmp_path / "bad.om"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with EmbeddedStore.open(tmp_path / "metrics.duckdb", retention=None) as store:
        with pytest.raises(OpenMetricsImportError) as caught:
            import_openmetrics(path, store, batch_samples=1)
        assert store.select([Matcher.equal("__name__", "good_total")], *ALL_TIME) == []
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert reason in str(caught.value)
    assert caught.value.line == line


def test_an_error_at_the_end_of_a_file_of_many_batches_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "READ_BYTES", 128)
    path = tmp_path / "late.om"
    lines = [f'late{{i="{i % 7}"}} {i} {T0 + i}' for i in range(300)]
    path.write_text("\n".join(lines) + "\nlate 1\n# EOF\n")
    with EmbeddedStore.open(tmp_path / "metrics.duckdb", retention=None) as store:
        with pytest.raises(OpenMetricsImportError, match=r":301: the sample has no timestamp"):
            import_openmetrics(path, store, batch_samples=10)
        assert store.select([Matcher.equal("__name__", "late")], *ALL_TIME) == []


class FileChangingStore(MemoryStore):
    """A store whose first write appends a line to the file being imported (a race)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def append(self, *args: Any) -> None:
        if self.path.read_text().endswith("# EOF\n"):
            with self.path.open("a") as file:
                file.write(GOOD)
        super().append(*args)


def test_a_file_that_changes_during_the_import_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "READ_BYTES", 64)
    path = tmp_path / "growing.om"
    path.write_text(GOOD * 20 + "# EOF\n")
    with pytest.raises(OpenMetricsImportError) as caught:
        import_openmetrics(path, FileChangingStore(path), batch_samples=5)
    assert caught.value.line == 22
    assert "after '# EOF'" in str(caught.value)
    assert "the file changed during the import" in str(caught.value)


def test_a_missing_file_is_reported_by_name(tmp_path: Path) -> None:
    missing = tmp_path / "nope.om"
    with pytest.raises(OpenMetricsImportError, match=f"^{missing}: "):
        import_openmetrics(missing, MemoryStore())


# --- through the CLI -----------------------------------------------------------------------


def write_config(directory: Path) -> Path:
    config = directory / "opsbook.yaml"
    config.write_text("project: import-test\nmetrics:\n  retention: 100000d\n")
    return config


def test_opsbook_import_fills_the_configured_store(tmp_path: Path, data_file: Path) -> None:
    _, expected = history()
    config = write_config(tmp_path)
    result = CliRunner().invoke(app, ["import", str(data_file), "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    store_path = tmp_path / ".opsbook" / "metrics.duckdb"
    assert document["store"] == str(store_path)
    assert (document["samples"], document["series"]) == (3 * STEPS, 3)
    assert document["min_time"] == T0
    assert document["max_time"] == T0 + (STEPS - 1) * 15 + 0.25
    with EmbeddedStore.open(store_path, retention=None) as store:
        assert_holds(store, expected)


def test_opsbook_import_reports_a_bad_file_with_its_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    path = tmp_path / "bad.om"
    path.write_text(GOOD + "good_total 2\n# EOF\n")
    result = CliRunner().invoke(app, ["import", str(path), "-c", str(config), "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["status"] == "error" and document["errorType"] == "bad_data"
    assert document["error"].startswith(f"{path}:2: the sample has no timestamp")
    store_path = metrics_store_path(load_config(config), config)
    with EmbeddedStore.open(store_path, retention=None) as store:
        assert store.select([Matcher.equal("__name__", "good_total")], *ALL_TIME) == []
