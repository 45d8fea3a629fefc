"""The metrics catalog (diffbench.engine.metrics) and the views that render through it: the
CLI run summary, `diffbench history`, `diffbench compare`, and the dashboard's result panels,
history table and compare dialog show the same rows, words and missing glyph."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from textual.app import App, ComposeResult

from diffbench.cli._run_view import summary_table
from diffbench.cli.main import main as cli
from diffbench.engine import metrics
from diffbench.engine.history import History
from diffbench.engine.metrics import CATALOG, MISSING, Metric, format_metric
from diffbench.engine.result import Metrics, RunResult
from diffbench.tui.screens.compare import CompareScreen
from diffbench.tui.widgets.history import HistoryTable
from diffbench.tui.widgets.results import ResultPanels

CFG = {"model": "tiny-sd15", "task": "t2i", "height": 64, "width": 64, "steps": 4, "seed": 1}
#: Glyphs the views used for "not measured" before the catalog; none may come back.
OLD_GLYPHS = ("—", "–", "n/a")


def _full_metrics(scale: float = 1.0) -> Metrics:
    """Every compare metric measured (values scaled so B differs from A)."""
    return Metrics(load_s=1.0 * scale, warmup_s=2.0 * scale, compile_s=1.5 * scale,
                   inference_s=0.4 * scale, it_per_s=10.0 / scale,
                   peak_allocated_gib=1.0 * scale, peak_reserved_gib=1.5 * scale,
                   peak_rss_gib=2.0 * scale, step_ms_p50=100.0 * scale,
                   step_ms_p90=110.0 * scale, step_ms_max=120.0, steps_run=4, recompiles=0,
                   psnr_db=40.0, ssim=0.99)


def _run(run_id: str, compiler: str, m: Metrics, started: str = "10") -> RunResult:
    return RunResult(run_id=run_id, started_at=f"2026-01-01T{started}:00:00+00:00",
                     config={**CFG, "compiler": compiler, "device": "cpu"}, metrics=m)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


class Host(App):
    """A bare app holding the dashboard's result panels and history table."""

    def compose(self) -> ComposeResult:
        yield ResultPanels(id="results")
        yield HistoryTable(id="history")


def _table_cells(table) -> list[list[str]]:
    """The plain text of a rich Table's cells, row by row."""
    columns = [[str(getattr(c, "plain", c)) for c in col._cells] for col in table.columns]
    return [list(row) for row in zip(*columns)]


def _panel_rows(app: App) -> dict[str, str]:
    rows = {}
    for pid in ("warmup_panel", "speed_panel", "memory_panel"):
        for label, value in _table_cells(app.query_one(f"#{pid}").content):
            rows[label] = value
    return rows


def _cli_table_rows(out: str) -> dict[str, list[str]]:
    """First cell -> other cells of each table row rich drew with │ separators."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


def _summary_rows(result: RunResult) -> dict[str, str]:
    return {label: value for label, value in _table_cells(summary_table(result))}


async def _dashboard_compare(a: RunResult, b: RunResult) -> dict[str, list[str]]:
    async with Host().run_test(size=(120, 50)) as pilot:
        screen = CompareScreen(a, b)
        await pilot.app.push_screen(screen)
        await pilot.pause()
        [static] = screen.query("#compare Static")
        return {row[0]: row[1:] for row in _table_cells(static.content)}


# ------------------------------------------------------------------ catalog
def test_catalog_keys_are_metrics_fields_or_derived():
    fields = set(Metrics.__dataclass_fields__)
    fit_fields = {"base_s", "per_step_ms", "it_per_s_no_base", "r2"}  # throughput LineFit
    keys = [m.key for m in CATALOG]
    assert len(keys) == len(set(keys))
    for entry in CATALOG:
        assert entry.key in fields | fit_fields or entry.get is not None, entry.key
        assert entry.better in (None, "higher", "lower")
        assert entry.when in ("always", "set", "gpu", "cpu")
    assert format_metric("inference_s", 0.4) == "0.400 s"
    assert format_metric("it_per_s", 12.5) == "12.50"
    assert format_metric("it_per_s", 12.5, unit=True) == "12.50 it/s"
    assert format_metric("peak_gib", None) == MISSING == "-"
    assert metrics.verdict("inference_s", 0.5, 0.25) == "2.00x faster"
    assert metrics.verdict("peak_rss_gib", 1.0, 1.5) == "1.50x more"
    assert metrics.verdict("it_per_s", 10.0, 10.02) == "same"
    assert metrics.verdict("recompiles", 0, 0) == MISSING  # no ratio from zero


# ------------------------------------------------------------------ compare: one row set
async def test_cli_compare_and_dashboard_compare_list_the_same_rows(home, capsys):
    a, b = _run("aaaa00000001", "none", _full_metrics()), \
        _run("bbbb00000002", "compile", _full_metrics(0.5), "11")
    History().add_many([a, b])
    expected = [m.short for m in CATALOG if m.compare]
    assert len(expected) == 14  # the union of the CLI's 14 and the dashboard's 11

    assert cli(["compare", "aaaa", "bbbb", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in data["rows"]] == expected
    assert cli(["compare", "aaaa", "bbbb"]) == 0
    cli_rows = _cli_table_rows(capsys.readouterr().out)
    dash_rows = await _dashboard_compare(a, b)
    dash_metric_rows = [label for label in dash_rows if label in expected]
    assert dash_metric_rows == expected
    for label in expected:  # same values and the same verdict, cell by cell
        assert cli_rows[label] == dash_rows[label], label
    assert cli_rows["inference"] == ["0.400 s", "0.200 s", "2.00x faster"]


# ------------------------------------------------------------------ one missing glyph
async def test_a_missing_metric_shows_the_same_glyph_in_every_view(home, capsys):
    # a run that measured CUDA memory but not the reserved peak, no p90, no SSIM, no warmup
    gappy = Metrics(load_s=1.0, inference_s=None, it_per_s=5.0, peak_allocated_gib=1.0,
                    step_ms_p50=10.0, step_ms_max=12.0, psnr_db=30.0, recompiles=0)
    run = _run("gggg00000001", "compile", gappy)
    full = _run("ffff00000002", "none", _full_metrics(), "11")
    History().add_many([run, full])

    summary = _summary_rows(run)
    assert summary["Max used CUDA memory (allocated / reserved)"] == f"1.00 / {MISSING} GiB"
    assert summary["Step time p50 / p90 / max"] == f"10.0 / {MISSING} / 12.0 ms"
    assert summary["vs baseline PSNR / SSIM"] == f"30.00 dB / {MISSING}"

    assert cli(["history"]) == 0
    history_out = capsys.readouterr().out
    [line] = [x for x in history_out.splitlines() if "gggg00000001" in x]
    assert line.split()[7:11] == ["5.00", MISSING, MISSING, "1.00"]  # it/s, infer, warmup, peak

    assert cli(["compare", "gggg", "ffff"]) == 0
    compare_out = capsys.readouterr().out
    cli_rows = _cli_table_rows(compare_out)
    assert cli_rows["inference"] == [MISSING, "0.400 s", MISSING]
    assert cli_rows["SSIM"] == [MISSING, "0.9900", MISSING]

    async with Host().run_test(size=(160, 40)) as pilot:
        app = pilot.app
        app.query_one(ResultPanels).show(run)
        table = app.query_one(HistoryTable)
        table.set_runs([run, full])
        await pilot.pause()
        panels = _panel_rows(app)
        assert panels["inference"] == MISSING and panels["peak resv"] == MISSING
        assert panels["step p90"] == MISSING
        cells = dict(zip([str(c.key.value) for c in table.ordered_columns],
                         table.get_row("gggg00000001")))
        assert cells["inference_s"] == MISSING and cells["warmup_s"] == MISSING
    dash_rows = await _dashboard_compare(run, full)
    assert dash_rows["inference"] == [MISSING, "0.400 s", MISSING]

    for text in (history_out, compare_out, json.dumps(summary, ensure_ascii=False),
                 json.dumps(panels, ensure_ascii=False)):
        assert not any(glyph in text for glyph in OLD_GLYPHS)


# ------------------------------------------------------------------ a new metric appears
EXTRA = Metric("fake_energy_j", "Energy of the measured call", "energy", "J", ".1f",
               better="lower", words=("less", "more"), column="energy J", panel="speed",
               summary="Energy used",
               compare=True, get=lambda m: None if m.inference_s is None
               else 250.0 * m.inference_s)


@pytest.fixture
def extra_metric(monkeypatch):
    """The catalog with one more (derived) metric: 250 W times the inference time."""
    monkeypatch.setattr(metrics, "CATALOG", [*CATALOG, EXTRA])
    return EXTRA


def test_a_new_catalog_metric_appears_in_the_cli_views(home, capsys, extra_metric):
    a, b = _run("aaaa00000001", "none", _full_metrics()), \
        _run("bbbb00000002", "compile", _full_metrics(0.5), "11")
    History().add_many([a, b])
    assert _summary_rows(a)["Energy used"] == "100.0 J"  # the run summary

    assert cli(["compare", "aaaa", "bbbb"]) == 0  # diffbench compare
    assert _cli_table_rows(capsys.readouterr().out)["energy"] == \
        ["100.0 J", "50.0 J", "2.00x less"]

    assert cli(["history"]) == 0  # diffbench history: a column with its header
    out = capsys.readouterr().out
    [header] = [x for x in out.splitlines() if "status" in x and "compiler" in x]
    assert header.split()[-3:] == ["energy", "J", "error"]
    [line] = [x for x in out.splitlines() if "aaaa00000001" in x]
    assert line.split()[-1] == "100.0"


async def test_a_new_catalog_metric_appears_in_the_dashboard_views(extra_metric):
    a, b = _run("aaaa00000001", "none", _full_metrics()), \
        _run("bbbb00000002", "compile", _full_metrics(0.5), "11")
    async with Host().run_test(size=(160, 40)) as pilot:
        app = pilot.app
        app.query_one(ResultPanels).show(a)  # the result panels
        table = app.query_one(HistoryTable)  # the history table
        table.set_runs([a, b])
        await pilot.pause()
        assert _panel_rows(app)["energy"] == "100.0 J"
        keys = [str(c.key.value) for c in table.ordered_columns]
        assert "fake_energy_j" in keys
        assert str(table.columns["fake_energy_j"].label).startswith("energy J")
        cells = dict(zip(keys, table.get_row("aaaa00000001")))
        assert cells["fake_energy_j"] == "100.0"
    assert (await _dashboard_compare(a, b))["energy"] == ["100.0 J", "50.0 J", "2.00x less"]


def test_summary_table_prints_without_markup_errors():
    # values go through rich markup escaping: a cache state or flag never breaks the table
    m = _full_metrics()
    m.image_flag = "nan"
    console = Console(file=io.StringIO(), width=120)
    console.print(summary_table(_run("aaaa00000001", "none", m)))
    text = console.file.getvalue()
    assert "Iterations per second" in text and "10.00" in text and "nan" in text
