"""`diffbench run`: exit codes for bad input (nothing written), a full run, flags vs profile."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from diffbench.cli.main import main as cli
from diffbench.engine.export import read_toml
from diffbench.engine.history import History

from repo_paths import ROOT, TESTS


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh DIFFBENCH_HOME and working folder per test."""
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a png")
    return str(path)


BAD = [
    (["--height", "100"], "height must be a multiple of 8"),
    (["--width", "12"], "width must be a multiple of 8"),
    (["--steps", "0"], "steps must be between 1"),
    (["--input-image", "{png}", "--steps", "1", "--strength", "0.5"],
     "int(1 * 0.5) = 0 denoising steps"),
    (["--input-image", "missing.png"], "input_image not found: missing.png"),
    (["--input-image", "{bad}"], "input_image is not a readable image"),
    (["--compiler", "turbo"], "unknown compiler 'turbo'"),
    (["--compiler-config", "{mode: 1}"], "compiler_config is not valid JSON"),
    (["--scheduler", "FastScheduler"], "unknown scheduler 'FastScheduler'"),
    (["--model", "tiny-unknown"], "unknown built-in model 'tiny-unknown'"),
    (["--model", "nobody/no-such-model"], "hf download nobody/no-such-model"),
    (["--compiler", "nexfort"], "compiler 'nexfort' cannot run here"),
    (["--compiler", "oneflow"], "compiler 'oneflow' cannot run here"),
    (["--model", "tiny-sdxl", "--task", "pix2pix", "--input-image", "{png}"],
     "task 'pix2pix' does not fit a sdxl model"),
    (["--profile", "no-such-profile"], "unknown profile 'no-such-profile'"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, message, home, capsys,
                                                            input_png, not_an_image):
    argv = [a.replace("{png}", input_png).replace("{bad}", not_an_image) for a in argv]
    code = cli(["run", "--model", "tiny-sd15", "--in-process", "--output-image", "o.png",
                "--export", "r.toml", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("diffbench: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (home / "o.png").exists() and not (home / "r.toml").exists()
    assert History().count() == 0


def test_export_folder_missing_is_refused_before_running(home, capsys):
    code = cli(["run", "--in-process", "--export", "nowhere/r.toml"])
    assert code == 2 and "folder does not exist" in capsys.readouterr().err


def test_output_image_that_is_a_folder_is_refused_before_running(home, capsys):
    (home / "images").mkdir()
    code = cli(["run", "--in-process", "--output-image", "images", "--export", "r.toml"])
    assert code == 2 and "it is a folder" in capsys.readouterr().err
    assert not (home / "r.toml").exists() and History().count() == 0


def test_full_run_prints_the_seed_block_exports_and_records(home, capsys):
    code = cli(["run", "--model", "tiny-sdxl", "--steps", "3", "--height", "64", "--width",
                "64", "--warmups", "1", "--in-process", "--output-image", "o.png",
                "--export", "r.toml"])
    out = capsys.readouterr().out
    assert code == 0
    for label in ("Warmup time", "Inference time", "Iterations per second",
                  "Max used memory", "Steps run"):
        assert label in out
    assert (home / "o.png").is_file()
    [exported] = read_toml(home / "r.toml")
    assert exported.status == "finished" and exported.metrics.steps_run == 3
    assert exported.config["model"] == "tiny-sdxl"
    [stored] = History().list()
    assert stored.run_id == exported.run_id


def test_flags_override_only_what_is_given(home, tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text('model = "tiny-sd15"\nsteps = 7\nheight = 64\nwidth = 64\n'
                       'seed = 5\nwarmups = 0\n')
    code = cli(["run", "--profile", str(profile), "--steps", "2", "--in-process",
                "--export", "r.toml", "--no-history"])
    assert code == 0
    [result] = read_toml(home / "r.toml")
    assert result.config["steps"] == 2  # flag wins
    assert result.config["seed"] == 5 and result.config["height"] == 64  # profile kept
    assert result.config["profile"] == "p"
    assert History().count() == 0  # --no-history


def test_subprocess_bad_input_has_no_traceback(home):
    proc = subprocess.run([sys.executable, "-m", "diffbench.cli.main", "run", "--steps", "0"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("diffbench: error: steps must be between 1 and 10000, "
                                   "got 0")


def test_subprocess_default_child_run(home):
    """The default path: the CLI runs the engine in a child process."""
    proc = subprocess.run(
        [sys.executable, "-m", "diffbench.cli.main", "run", "--model", "tiny-sd15", "--steps", "2",
         "--height", "64", "--width", "64", "--warmups", "0", "--output-image", "o.png"],
        capture_output=True, text=True, cwd=home, timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr
    assert "Iterations per second" in proc.stdout
    assert (home / "o.png").is_file()
    assert "Traceback" not in proc.stderr


def _narrow_view():
    import io

    from rich.console import Console

    from diffbench.cli._run_view import RunView
    from diffbench.engine.config import RunConfig

    buffer = io.StringIO()
    console = Console(file=buffer, width=40, force_terminal=False, color_system=None)
    return RunView(RunConfig(model="tiny-sd15", steps=4), console=console, out=console), buffer


def test_messages_stay_one_line_on_a_narrow_non_tty_stderr():
    from diffbench.engine import events as ev
    from diffbench.engine.result import RunResult

    view, buffer = _narrow_view()
    long = "model 'x' is not in the local Hugging Face cache [and] " + "word " * 30
    view.warn(long)
    view.note(long)
    view.on_event(ev.LogMessage("warning", long))
    view.print_summary(RunResult(status="failed", error=long))
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    assert lines[:4] == [f"warning: {long}", long, f"warning: {long}",
                         f"diffbench: run failed: {long}"]


def test_measured_label_is_the_running_mean_and_failure_clears_the_spinner():
    from diffbench.engine import events as ev

    view, _ = _narrow_view()
    with view:
        view.on_event(ev.PhaseStarted("measure"))
        for index, ms in ((1, 900.0), (2, 100.0), (3, 300.0)):
            view.on_event(ev.StepFinished("measured", index, 4, ms, 0))
        [task] = view.progress.tasks
        assert task.description == "Measured call (mean 200 ms/step so far)"
        view.on_event(ev.PhaseStarted("load"))
        view.on_event(ev.RunFailed("load failed: boom", status="failed"))
        assert view.progress.tasks == []  # no frozen "⠋ Load model 0/1" left behind


def test_timeout_is_honoured_in_process(home, capsys):
    code = cli(["run", "--model", "tiny-sd15", "--steps", "400", "--height", "64", "--width",
                "64", "--warmups", "0", "--in-process", "--timeout", "0.5", "--no-history"])
    err = capsys.readouterr().err
    assert code == 1
    assert "diffbench: run failed: timed out after 0.5 s (--timeout / timeout_s)" in err


# ------------------------------------------------------------------ the child started early


@pytest.fixture
def started(monkeypatch):
    """Every child `diffbench run` starts ahead of preflight
    (diffbench.engine.child_process.start_child)."""
    import diffbench.engine.child_process

    children: list = []
    real = diffbench.engine.child_process.start_child

    def spy(*args, **kwargs):
        child = real(*args, **kwargs)
        children.append(child)
        return child

    monkeypatch.setattr(diffbench.engine.child_process, "start_child", spy)
    return children


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("argv, message", [
    (["--model", "nobody/no-such-model"], "hf download nobody/no-such-model"),
    (["--compiler", "nexfort"], "compiler 'nexfort' cannot run here"),
    (["--export", "nowhere/r.toml"], "folder does not exist"),
])
def test_failed_preflight_kills_the_child_started_early(argv, message, home, capsys, started):
    code = cli(["run", "--model", "tiny-sd15", "--output-image", "o.png", *argv]) \
        if "--model" not in argv else cli(["run", "--output-image", "o.png", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("diffbench: error: ") and err.count("\n") == 1 and message in err
    [child] = started  # it was started before the check that failed ...
    assert child.proc.returncode == -9  # ... then killed and reaped: no orphan, no zombie
    assert _gone(child.proc.pid)
    assert not (home / "o.png").exists() and History().count() == 0


def test_interrupt_during_preflight_kills_the_child_started_early(home, capsys, started,
                                                                 monkeypatch):
    import diffbench.engine.preflight

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(diffbench.engine.preflight, "preflight", interrupted)
    assert cli(["run", "--model", "tiny-sd15"]) == 130
    [child] = started
    assert child.proc.returncode == -9 and _gone(child.proc.pid)
    assert History().count() == 0


def test_the_run_goes_to_the_child_started_early(home, capsys, started, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_WORKER_RUN", "test_worker_fakes:run")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("FAKE_STEPS", "3")
    code = cli(["run", "--model", "tiny-sd15", "--steps", "3", "--no-history"])
    out = capsys.readouterr().out
    assert code == 0 and "Iterations per second" in out
    [child] = started
    assert child.used and child.proc.returncode == 0  # the run's child, exited by itself


def test_no_child_is_started_early_in_process_or_for_another_interpreter(home, started,
                                                                         capsys):
    assert cli(["run", "--in-process", "--input-image", "missing.png"]) == 2
    assert cli(["run", "--python", "/nonexistent/python3"]) == 2
    assert "interpreter not found" in capsys.readouterr().err
    assert started == []


def store_baseline_and_fake_child(home, monkeypatch):
    """A stored baseline run (a flat 16x16 image) of tiny-sd15 / 3 steps, and a fake child
    whose image is one channel off by 2 levels from it."""
    from PIL import Image

    from diffbench.engine.config import RunConfig
    from diffbench.engine.result import RunResult

    Image.new("RGB", (16, 16), (10, 20, 30)).save(home / "base.png")
    History().add(RunResult(run_id="base00000001", status="finished",
                            config=RunConfig(model="tiny-sd15", steps=3).to_dict(),
                            image_path=str(home / "base.png")))
    monkeypatch.setenv("DIFFBENCH_WORKER_RUN", "test_worker_fakes:run_with_image")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("FAKE_RGB", "12,20,30")


def run_against_the_stored_baseline(home, capsys):
    """A --deepcache run whose exported metrics compare it with the stored baseline (see
    store_baseline_and_fake_child); its exported RunResult."""
    code = cli(["run", "--model", "tiny-sd15", "--steps", "3", "--deepcache",
                "--output-image", "o.png", "--export", "r.toml"])
    assert code == 0, capsys.readouterr().err
    [exported] = read_toml(home / "r.toml")
    assert exported.metrics.baseline_run_id == "base00000001"
    # One channel off by 2 levels everywhere: MSE 4/3, PSNR = 10 log10(255^2 / (4/3)).
    assert exported.metrics.psnr_db == pytest.approx(46.88, abs=0.01)
    return exported


def test_the_child_compares_the_image_with_its_baseline(home, capsys, started, monkeypatch):
    """PSNR/SSIM against the baseline are computed in the child (numpy and PIL are loaded
    there); the parent only records them."""
    from diffbench.engine.session import Session

    store_baseline_and_fake_child(home, monkeypatch)

    def parent_compares(*args):
        raise AssertionError("the parent compared the images itself")

    monkeypatch.setattr(Session, "attach_baseline", parent_compares)
    exported = run_against_the_stored_baseline(home, capsys)
    assert 0.0 < exported.metrics.ssim <= 1.0
    [stored] = [r for r in History().list() if r.run_id == exported.run_id]
    assert stored.metrics.psnr_db == exported.metrics.psnr_db


def test_output_image_format_follows_its_extension(home, capsys):
    """--output-image out.jpg writes a JPEG (Pillow's format for the extension), not PNG
    bytes under a .jpg name."""
    code = cli(["run", "--model", "tiny-sd15", "--in-process", "--steps", "2", "--height",
                "64", "--width", "64", "--warmups", "0", "--no-history",
                "--output-image", "out.jpg"])
    assert code == 0, capsys.readouterr().err
    assert (home / "out.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG start of image


def test_dashboard_without_a_terminal_is_one_line_error():
    """`diffbench < /dev/null` (or in a pipe): say so instead of drawing into the void."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "diffbench.cli.main"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("diffbench: error: the dashboard needs a terminal")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""


def test_the_parent_compares_when_the_child_did_not(home, capsys, monkeypatch):
    """A child that does not say ``baseline_checked`` (an older diffbench under --python, or
    a comparison that failed there): the parent computes PSNR/SSIM itself, as before."""
    import diffbench.engine.client as client

    store_baseline_and_fake_child(home, monkeypatch)
    real_run_in_child = client.run_in_child

    def older_child(*args, **kwargs):
        result = real_run_in_child(*args, **kwargs)
        result.metrics.psnr_db = result.metrics.ssim = None  # it compared nothing
        result.metrics.baseline_run_id = None
        if hasattr(result, "baseline_checked"):
            del result.baseline_checked
        return result

    monkeypatch.setattr(client, "run_in_child", older_child)
    run_against_the_stored_baseline(home, capsys)


@pytest.mark.parametrize("stderr", ["own", "same pipe"])
def test_a_reader_that_leaves_early_costs_no_results(home, stderr, run_with_closed_stdout):
    """`diffbench run ... --export r.toml | true` (and `2>&1 | head -c1`: progress on the
    closed pipe too): stdout is gone before the summary is printed; the run is still in the
    history and its export written (stored before printing), and the command ends quietly
    with the closed-pipe code."""
    env = dict(os.environ, DIFFBENCH_WORKER_RUN="test_worker_fakes:run", FAKE_STEPS="3",
               PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT / "src")]))
    code = ("import sys; from diffbench.cli.main import main\n"
            "sys.exit(main(['run', '--model', 'tiny-sd15', '--steps', '3', "
            "'--export', 'r.toml']))\n")
    returncode, err = run_with_closed_stdout(code, env, cwd=home,
                                             stderr_too=stderr == "same pipe")
    assert returncode == 141, err.decode()
    assert b"Traceback" not in err
    assert History().count() == 1
    assert [r.status for r in read_toml(home / "r.toml")] == ["finished"]


def test_export_dash_writes_the_toml_to_stdout_and_the_table_to_stderr(home, capsys):
    code = cli(["run", "--model", "tiny-sd15", "--steps", "2", "--in-process", "--export",
                "-"])
    out, err = capsys.readouterr()
    assert code == 0 and not (home / "-").exists()
    from diffbench.engine.export import loads

    [result] = loads(out)
    assert result.status == "finished" and result.run_id == History().list()[0].run_id
    assert "exported to standard output" in err and "it/s" in err.lower()


def test_export_dash_with_print_output_is_refused(home, capsys):
    code = cli(["run", "--in-process", "--export", "-", "--print-output"])
    assert code == 2 and "both write to standard output" in capsys.readouterr().err
    assert History().count() == 0


def test_an_image_that_cannot_be_saved_keeps_the_measurement(home, capsys, monkeypatch):
    """The output folder removed during the run (here: the write fails) costs the image, not
    the run: finished, exported, recorded, with the reason as a notice."""
    from diffbench.engine import runner
    from diffbench.engine.errors import ConfigError

    def gone(image, path):
        raise ConfigError(f"cannot write {path}: folder does not exist")

    monkeypatch.setattr(runner, "save_image", gone)
    code = cli(["run", "--model", "tiny-sd15", "--steps", "2", "--in-process",
                "--output-image", "o.png", "--export", "r.toml"])
    err = capsys.readouterr().err
    assert code == 0, err
    [result] = read_toml(home / "r.toml")
    assert result.status == "finished" and result.metrics.it_per_s
    assert any("image not saved" in n for n in result.notices)
    assert History().list()[0].status == "finished"
