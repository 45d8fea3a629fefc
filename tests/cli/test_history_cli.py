"""`diffbench history`, `export`, `compare` on a stored history."""

from __future__ import annotations

import json
import os

import pytest

from diffbench.cli.main import main as cli
from diffbench.engine.export import read_toml
from diffbench.engine.history import History
from diffbench.engine.result import Metrics, RunResult


@pytest.fixture
def history(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    h = History()
    cfg = {"model": "tiny-sd15", "task": "t2i", "height": 64, "width": 64, "seed": 333}
    h.add(RunResult(run_id="aaaa00000001", started_at="2026-01-01T10:00:00+00:00",
                    config={**cfg, "compiler": "none"},
                    metrics=Metrics(it_per_s=10.0, inference_s=0.5, warmup_s=1.0,
                                    peak_rss_gib=1.0)))
    h.add(RunResult(run_id="bbbb00000002", started_at="2026-01-01T11:00:00+00:00",
                    config={**cfg, "compiler": "compile", "compiler_config": {"mode": "x"}},
                    metrics=Metrics(it_per_s=15.0, inference_s=0.25, warmup_s=30.0,
                                    peak_rss_gib=1.5)))
    h.add(RunResult(run_id="cccc00000003", started_at="2026-01-01T12:00:00+00:00",
                    status="failed", error="child crashed with SIGSEGV (segmentation fault)",
                    config={**cfg, "model": "tiny-sdxl", "compiler": "compile"}))
    return h


def test_history_lists_newest_first_with_filters(history, capsys):
    assert cli(["history"]) == 0
    out = capsys.readouterr().out
    assert out.index("cccc00000003") < out.index("bbbb00000002") < out.index("aaaa00000001")
    assert "SIGSEGV" in out and "15.00" in out
    assert cli(["history", "--status", "failed", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["run_id"] for x in lines] == ["cccc00000003"]
    assert cli(["history", "--compiler", "compile", "--model", "tiny-sd15", "--json"]) == 0
    assert [json.loads(x)["run_id"] for x in capsys.readouterr().out.splitlines()] == \
        ["bbbb00000002"]
    assert cli(["history", "--limit", "1", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert cli(["history", "--model", "nope"]) == 0  # a filter that matches nothing
    assert "no stored run matches these filters" in capsys.readouterr().out


def test_history_fits_a_narrow_terminal(history, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert cli(["history"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "aaaa00000001" in out  # ids are never dropped


def test_export_ids_and_all_then_import_round_trip(history, tmp_path, capsys, monkeypatch):
    out = tmp_path / "two.toml"
    assert cli(["export", "aaaa", "bbbb", "aaaa00000001", "-o", str(out)]) == 0
    assert [r.run_id for r in read_toml(out)] == ["aaaa00000001", "bbbb00000002"]
    assert cli(["export", "--all", "--status", "finished", "-o", str(out)]) == 0
    assert len(read_toml(out)) == 2
    assert cli(["export", "--all", "-o", str(out)]) == 0
    exported = read_toml(out)
    assert len(exported) == 3
    # import into a fresh history gives the same runs back
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "other"))
    capsys.readouterr()
    assert cli(["history", "--import", str(out)]) == 0
    assert "imported 3 new runs" in capsys.readouterr().out
    assert cli(["history", "--import", str(out)]) == 0  # again: nothing new
    again = capsys.readouterr().out
    assert "imported 0 new runs" in again and "3 already in the history" in again
    assert sorted(r.to_dict()["run_id"] for r in History().list()) == \
        sorted(r.run_id for r in exported)
    assert [r.to_dict() for r in History().list()] == \
        [r.to_dict() for r in history.list()]


def test_export_filters_imply_all_and_dash_writes_to_stdout(history, tmp_path, capsys,
                                                           monkeypatch):
    from diffbench.engine.export import loads

    monkeypatch.chdir(tmp_path)  # where a file named "-" would land

    assert cli(["export", "--model", "tiny-sd15", "-o", "-"]) == 0
    captured = capsys.readouterr()
    assert [r.run_id for r in loads(captured.out)] == ["aaaa00000001", "bbbb00000002"]
    assert "exported 2 runs to standard output" in captured.err
    assert not (tmp_path / "-").exists()
    assert cli(["export", "--status", "failed", "-o", str(tmp_path / "f.toml")]) == 0
    assert [r.run_id for r in read_toml(tmp_path / "f.toml")] == ["cccc00000003"]
    assert cli(["export", "aaaa", "--model", "tiny-sd15", "-o", "-"]) == 2
    assert "with ids, leave them out" in capsys.readouterr().err


def test_import_reads_standard_input_as_export_writes_it(history, tmp_path, capsys,
                                                         monkeypatch):
    import io

    assert cli(["export", "--all", "-o", "-"]) == 0
    text = capsys.readouterr().out
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "other"))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert cli(["history", "--import", "-"]) == 0
    assert "imported 3 new runs from standard input" in capsys.readouterr().out
    assert History().count() == 3
    # Nothing piped in: a terminal (would wait for typing) or no stdin at all.
    for stdin in (None, _Terminal()):
        monkeypatch.setattr("sys.stdin", stdin)
        assert cli(["history", "--import", "-"]) == 2
        assert "pipe one in" in capsys.readouterr().err


class _Terminal:
    def isatty(self):
        return True


def test_delete_and_reset(history, capsys):
    assert cli(["history", "--delete", "cccc"]) == 0
    assert history.count() == 2
    assert cli(["history", "--reset"]) == 0
    assert "moved" in capsys.readouterr().out
    assert History().count() == 0
    assert list(history.path.parent.glob("history.sqlite.bak-*"))


def test_compare_prints_ratios_b_over_a(history, capsys):
    assert cli(["compare", "aaaa", "bbbb", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["metric"]: r for r in data["rows"]}
    assert rows["it_per_s"]["ratio"] == pytest.approx(1.5)
    assert rows["inference_s"]["ratio"] == pytest.approx(0.5)
    assert rows["warmup_s"]["ratio"] == pytest.approx(30.0)
    assert rows["peak_rss_gib"]["ratio"] == pytest.approx(1.5)
    assert data["settings"]["compiler"] == ["none", "compile"]
    assert cli(["compare", "aaaa", "bbbb"]) == 0
    out = capsys.readouterr().out
    # B vs A as a factor and a word, as the dashboard's compare (it/s 1.5x, inference 0.5x)
    assert "1.50x faster" in out and "2.00x faster" in out and "compiler_config" in out


def test_compare_with_a_failed_run_and_images(history, tmp_path, capsys):
    from PIL import Image

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (16, 16), (10, 20, 30)).save(a)
    Image.new("RGB", (16, 16), (10, 20, 31)).save(b)
    run_a, run_b = history.get("aaaa"), history.get("bbbb")
    run_a.image_path, run_b.image_path = str(a), str(b)
    history.add(run_a)
    history.add(run_b)
    assert cli(["compare", "aaaa", "bbbb", "--json"]) == 0
    image = json.loads(capsys.readouterr().out)["image"]
    assert 40 < image["psnr_db"] < 100 and 0.9 < image["ssim"] <= 1.0
    assert cli(["compare", "aaaa", "cccc"]) == 0
    assert "note: run cccc00000003 failed" in capsys.readouterr().out


def test_compare_shows_a_dash_for_missing_values_never_a_ratio(history, capsys):
    # a run with --warmups 0 has no warmup time; the ratio must not be formed from it
    history.add(RunResult(run_id="dddd00000004", started_at="2026-01-01T13:00:00+00:00",
                          config={"model": "tiny-sd15", "compiler": "none"},
                          metrics=Metrics(it_per_s=12.0, inference_s=0.4, warmup_s=None,
                                          recompiles=0)))
    history.add(RunResult(run_id="eeee00000005", started_at="2026-01-01T14:00:00+00:00",
                          config={"model": "tiny-sd15", "compiler": "none"},
                          metrics=Metrics(it_per_s=12.0, inference_s=0.4, warmup_s=2.0,
                                          recompiles=0)))
    assert cli(["compare", "dddd", "eeee"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [warmup] = [line for line in lines if "warmup" in line]
    assert [c.strip() for c in warmup.split("│")[2:5]] == ["-", "2.00 s", "-"]
    [recompiles] = [line for line in lines if "recompiles" in line]
    assert [c.strip() for c in recompiles.split("│")[2:5]] == ["0", "0", "-"]


@pytest.mark.parametrize("output", ["flood", "one line", "rich"])
def test_a_closed_pipe_ends_the_command_quietly(tmp_path, output, run_with_closed_stdout):
    """`diffbench history --json | head -1`: the reader leaves early; no traceback, no
    "Exception ignored" message, the shell's closed-pipe code (141) — for output that fills the
    pipe while the command runs, for a line still in stdout's buffer when it returns (the usual
    case without PYTHONUNBUFFERED), and for output through rich."""
    body = {"flood": "    while True: print('x' * 1000)\n",
            "one line": "    print('x')\n",
            "rich": "    from diffbench.cli._console import make_console\n"
                    "    out = make_console()\n"
                    "    for _ in range(1000): out.print('x' * 100)\n"}[output]
    code = ("import sys, diffbench.cli.history as h\n"
            "from diffbench.cli.main import main\n"
            "def write(args):\n" + body +
            "h.main = write\n"
            "sys.exit(main(['history']))\n")
    returncode, err = run_with_closed_stdout(code, dict(os.environ,
                                                        DIFFBENCH_HOME=str(tmp_path)))
    assert returncode == 141, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err and b"ignored" not in err


def test_history_shows_and_filters_the_dashboard_accelerator_label(history, capsys):
    cfg = {"model": "tiny-sd15", "task": "t2i", "height": 64, "width": 64, "seed": 333}
    history.add(RunResult(run_id="dddd00000004", started_at="2026-01-01T13:00:00+00:00",
                          config={**cfg, "compiler": "none", "deepcache": True},
                          metrics=Metrics(it_per_s=12.0, inference_s=0.4)))
    assert cli(["history"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "dddd00000004" in line)
    assert "none+deepcache" in row
    for wanted in ("deepcache", "none+deepcache"):
        assert cli(["history", "--compiler", wanted, "--json"]) == 0
        assert [json.loads(x)["run_id"] for x in capsys.readouterr().out.splitlines()] == \
            ["dddd00000004"]
    # the compiler alone still matches every run of it, accelerated or not
    assert cli(["history", "--compiler", "none", "--json"]) == 0
    assert [json.loads(x)["run_id"] for x in capsys.readouterr().out.splitlines()] == \
        ["dddd00000004", "aaaa00000001"]
    assert cli(["history", "--compiler", "none", "--limit", "1", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_run_title_carries_the_accelerator_label():
    from diffbench.cli._run_view import summary_table
    from diffbench.tui.runs import accel_of

    run = RunResult(run_id="eeee00000005", config={
        "model": "tiny-sd15", "task": "t2i", "height": 128, "width": 128, "compiler": "none",
        "deepcache": True}, metrics=Metrics(it_per_s=12.0, inference_s=0.4))
    title = str(summary_table(run).title)
    assert title == "tiny-sd15 · t2i · 128x128 · none+deepcache · finished"
    assert accel_of(run) == "none+deepcache"  # the dashboard's label is the same
