"""`diffbench run --repeat`, compare's ratio ranges and hosts, the empty negative prompt, and
pipeline warnings in a child run, end to end on the tiny models."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from PIL import Image

from diffbench.cli.main import main as cli
from diffbench.engine.export import read_toml
from diffbench.engine.history import History
from diffbench.engine.result import Metrics, RunResult


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh DIFFBENCH_HOME and working folder per test."""
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


TINY = ["--model", "tiny-sd15", "--steps", "3", "--height", "64", "--width", "64",
        "--warmups", "0"]


def _median(values):
    return sorted(values)[len(values) // 2]


def test_repeat_3_records_three_calls_with_median_min_max_in_history_and_export(home,
                                                                                capsys):
    code = cli(["run", *TINY, "--repeat", "3", "--in-process", "--export", "r.toml"])
    out = capsys.readouterr().out
    assert code == 0
    [stored] = History().list()
    [exported] = read_toml(home / "r.toml")
    for run in (stored, exported):
        m = run.metrics
        assert run.config["repeat"] == 3
        for name in ("it_per_s", "inference_s", "step_ms_p50", "step_ms_p90"):
            calls = getattr(m, f"{name}_calls")
            assert len(calls) == 3, name
            assert getattr(m, name) == pytest.approx(_median(calls), rel=1e-5), name
            assert getattr(m, f"{name}_min") == pytest.approx(min(calls), rel=1e-5), name
            assert getattr(m, f"{name}_max") == pytest.approx(max(calls), rel=1e-5), name
        assert m.spread == pytest.approx((max(m.it_per_s_calls) - min(m.it_per_s_calls))
                                         / _median(m.it_per_s_calls), rel=1e-4)
        assert m.steps_run == 3 and m.text_tokens == 77
    assert exported.metrics == stored.metrics
    text = (home / "r.toml").read_text()
    assert "it_per_s_calls = [" in text and "it_per_s_min = " in text
    assert "  it/s min / max" in out and "  spread over the calls" in out
    # CPU: no GPU busy figure, said as "-"; the host in the environment and the summary
    assert "GPU busy / of bf16 peak" in out and "- / -" in out
    env = stored.environment
    assert int(env["cpu_cores"]) >= 1 and len(env["load_average"].split()) == 3
    assert len(env["host_id"]) == 12 and "Host" in out


def test_repeat_default_is_one_call_on_cpu(home, capsys):
    assert cli(["run", *TINY, "--in-process", "--no-history", "--export", "r.toml"]) == 0
    [run] = read_toml(home / "r.toml")
    assert run.config["repeat"] == 1 and len(run.metrics.it_per_s_calls) == 1
    assert run.metrics.it_per_s_min is None and run.metrics.spread is None
    assert "spread" not in capsys.readouterr().out


def _stored(run_id: str, ips: float, low: float, high: float, **env) -> RunResult:
    metrics = Metrics(it_per_s=ips, it_per_s_min=low, it_per_s_max=high,
                      it_per_s_calls=[low, ips, high], inference_s=1.0 / ips)
    return RunResult(run_id=run_id, config={"model": "tiny-sd15", "compiler": "none"},
                     environment={"cpu_model": "AMD EPYC", "cpu_cores": "2", **env},
                     metrics=metrics)


def test_compare_labels_overlapping_ranges_no_clear_difference(home, capsys):
    History().add_many([_stored("aaaa00000001", 10.0, 8.0, 12.0),
                        _stored("bbbb00000002", 11.0, 9.0, 13.0),
                        _stored("cccc00000003", 20.0, 19.0, 21.0)])
    assert cli(["compare", "aaaa", "bbbb", "--json"]) == 0
    rows = {r["metric"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    ips = rows["it_per_s"]
    assert ips["ratio"] == pytest.approx(1.1)  # from the medians
    assert (ips["ratio_low"], ips["ratio_high"]) == pytest.approx((9 / 12, 13 / 8))
    assert ips["verdict"] == "no clear difference (0.75-1.62x)"
    assert cli(["compare", "aaaa", "bbbb"]) == 0
    assert "no clear difference" in capsys.readouterr().out

    assert cli(["compare", "aaaa", "cccc", "--json"]) == 0
    ips = {r["metric"]: r for r in json.loads(capsys.readouterr().out)["rows"]}["it_per_s"]
    assert ips["verdict"] == "2.00x faster (1.58-2.62x)"


def test_compare_warns_when_runs_come_from_different_hosts(home, capsys):
    History().add_many([_stored("aaaa00000001", 10.0, 9.9, 10.1, host_id="111111111111"),
                        _stored("bbbb00000002", 10.0, 9.9, 10.1, host_id="222222222222"),
                        _stored("cccc00000003", 10.0, 9.9, 10.1, host_id="111111111111")])
    assert cli(["compare", "aaaa", "bbbb"]) == 0
    out = capsys.readouterr().out
    assert "different hosts (host_id 111111111111 vs 222222222222)" in out
    assert cli(["compare", "aaaa", "cccc"]) == 0
    assert "different hosts" not in capsys.readouterr().out
    assert cli(["compare", "aaaa", "bbbb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["different_hosts"] == ["host_id"]


# ------------------------------------------------------------------ empty negative prompt
def test_an_explicit_empty_negative_prompt_reaches_the_pipeline(home, monkeypatch):
    from diffbench.cli.run import config_overrides
    from diffbench.cli.main import build_parser
    from diffbench.engine.config import RunConfig
    from diffbench.engine.prepare import call_kwargs

    parse = build_parser().parse_args
    given = RunConfig(**config_overrides(parse(["run", "--negative-prompt", ""])))
    default = RunConfig(**config_overrides(parse(["run"])))
    assert given.negative_prompt == "" and default.negative_prompt is None
    pipe = object()  # no family claims it: the plain keyword set
    assert call_kwargs(given, pipe, "cpu", 64, 64)["negative_prompt"] == ""
    assert "negative_prompt" not in call_kwargs(default, pipe, "cpu", 64, 64)


def test_empty_negative_prompt_changes_the_tiny_sdxl_image_and_is_stored_as_given(home):
    common = ["run", "--model", "tiny-sdxl", "--steps", "2", "--height", "64", "--width",
              "64", "--warmups", "0", "--in-process"]
    assert cli([*common, "--output-image", "none.png"]) == 0
    assert cli([*common, "--negative-prompt", "", "--output-image", "empty.png"]) == 0
    none, empty = (np.asarray(Image.open(home / name), dtype=np.int16)
                   for name in ("none.png", "empty.png"))
    # SDXL zeroes the negative embedding only when no negative prompt is passed
    assert np.abs(none - empty).max() > 0
    by_image = {run.config["output_image"]: run.config for run in History().list()}
    assert by_image["none.png"]["negative_prompt"] is None
    assert by_image["empty.png"]["negative_prompt"] == ""


def test_version_1_records_read_their_empty_negative_prompt_as_none(home, tmp_path):
    # a version-1 history: its "" never reached the pipeline
    from diffbench.engine.history_schema import _SCHEMA_V1

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1)
    conn.execute("INSERT INTO runs (run_id, started_at, status, config, environment, metrics, "
                 "notices) VALUES ('old000000001', '2026-01-01T00:00:00+00:00', 'finished', "
                 "?, '{}', '{}', '[]')", (json.dumps({"negative_prompt": ""}),))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    history = History(path)
    assert history.get("old0").config["negative_prompt"] is None
    history.add(RunResult(run_id="new000000002", config={"negative_prompt": ""}))
    assert History(path).get("new0").config["negative_prompt"] == ""  # now: as given
    old = tmp_path / "old.toml"
    old.write_text('format = "diffbench-runs"\nformat_version = 1\n[run]\nrun_id = "a"\n'
                   '[config]\nnegative_prompt = ""\n')
    assert read_toml(old)[0].config["negative_prompt"] is None
    old.write_text(old.read_text().replace("format_version = 1", "format_version = 2"))
    assert read_toml(old)[0].config["negative_prompt"] == ""


# ------------------------------------------------------------------ pipeline warnings
def test_a_pipeline_warning_in_the_child_reaches_the_run_notices(home, monkeypatch, capsys):
    long_prompt = "a cat sitting on a lap " * 6  # over CLIP's 77 tokens: diffusers truncates
    code = cli(["run", *TINY, "--prompt", long_prompt])  # the default: a child process
    assert code == 0
    [stored] = History().list()
    truncated = [n for n in stored.notices if "truncated because CLIP can only handle "
                 "sequences up to 77 tokens" in n]
    assert len(truncated) == 1  # once, though every call truncates
    assert truncated[0].startswith("pipeline warning: ")
    err = capsys.readouterr().err
    assert err.count("truncated because CLIP") == 1  # shown live, once (not by diffusers too)


def test_run_help_names_the_median_over_the_measured_calls_and_the_default_model(capsys,
                                                                                monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: phrases are not wrapped
    with pytest.raises(SystemExit):
        cli(["run", "--help"])
    out = capsys.readouterr().out
    assert "one measured call" not in out
    assert "medians over the measured calls" in out and "--repeat" in out
    model_help = next(line for line in out.splitlines() if line.strip().startswith("--model "))
    assert "(default tiny-sd15)" in model_help
