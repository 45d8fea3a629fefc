"""Bad input across the CLI, profiles, exports, the history and the child protocol.

Each case asserts a clear one-line error, the right exit code (2 = bad input) or carry-on
behaviour, and that the history is intact afterwards (same runs, same content, integrity ok).
Nothing here runs a model: every case fails before loading, or uses scripted children.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from diffbench.engine import events as ev
from diffbench.cli.main import main as cli
from diffbench.engine.client import run_in_child
from diffbench.engine.config import RunConfig
from diffbench.engine.history import History
from diffbench.engine.result import Metrics, RunResult

from repo_paths import ROOT


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A DIFFBENCH_HOME with two stored runs; yields a checker that the history is intact."""
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    history = History()
    seeded = [RunResult(run_id=f"seed{i}000000", started_at=f"2026-01-0{i}T00:00:00+00:00",
                        config={"model": "tiny-sd15", "compiler": "none", "height": 64,
                                "width": 64}, metrics=Metrics(it_per_s=10.0 + i))
              for i in (1, 2)]
    for result in seeded:
        history.add(result)
    snapshot = [r.to_dict() for r in history.list()]

    def intact(extra: int = 0) -> None:
        runs = History().list()
        assert [r.to_dict() for r in runs if r.run_id.startswith("seed")] == snapshot
        assert len(runs) == len(snapshot) + extra
        conn = sqlite3.connect(history.path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()

    intact.path = history.path  # type: ignore[attr-defined]
    intact.tmp = tmp_path  # type: ignore[attr-defined]
    return intact


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of `diffbench argv...` (SystemExit from argparse included)."""
    try:
        code = cli(list(argv))
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line(err: str, *parts: str) -> None:
    assert err.count("\n") == 0, f"not one line: {err!r}"
    assert "Traceback" not in err
    for part in parts:
        assert part in err, f"{part!r} not in {err!r}"


@pytest.fixture
def png(tmp_path) -> str:
    from PIL import Image

    path = tmp_path / "in.png"
    Image.new("RGB", (64, 64), (120, 30, 200)).save(path)
    return str(path)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------------- CLI: run flags
@pytest.mark.parametrize("argv, message", [
    (["--height", "100"], "height must be a multiple of 8"),
    (["--steps", "0"], "steps must be between 1"),
    (["--seed", "-1"], "seed must be between 0"),
    (["--width", "1000000"], "width must be between 8 and 8192"),
    (["--batch", "100000"], "batch must be between 1 and 64"),
    (["--width", "abc"], "invalid int value"),
    (["--compiler", "turbo"], "unknown compiler 'turbo'"),
    (["--compiler-config", "{not json"], "compiler_config is not valid JSON"),
    (["--compiler-config", "[1, 2]"], "compiler_config must be a JSON object"),
    (["--extra-call-kwargs", "3"], "extra_call_kwargs must be a JSON object"),
    (["--scheduler", "FastestScheduler"], "unknown scheduler 'FastestScheduler'"),
    (["--model", "no-such/model-anywhere"], "no-such/model-anywhere"),
    (["--input-image", "missing.png"], "input_image not found: missing.png"),
    (["--timeout", "-5"], "timeout_s (--timeout) must be a positive, finite number"),
    (["--timeout", "nan"], "timeout_s (--timeout) must be a positive, finite number"),
    (["--timeout", "1e300"], "timeout_s (--timeout) must be a positive, finite number"),
    (["--strength", "1.5", "--input-image", "{png}"], "strength must be a number in (0, 1]"),
    (["--steps", "1", "--strength", "0.5", "--input-image", "{png}"], "0 denoising steps"),
    (["--output-image", "no/such/folder/out.png"], "output_image folder does not exist"),
    (["--custom-pipeline", "lpw_stable_diffusion"], "--trust-remote-code"),
    (["--compiler", "cudagraph", "--device", "cpu"], "cannot run here"),
    # Error order: a compiler this machine cannot run, then the settings, then missing
    # packages (CI has no torchao: the settings error must still come first).
    (["--compiler", "cudagraph", "--device", "cpu", "--quantize", "int8dq"],
     "CUDA graphs need a CUDA GPU"),
    (["--quantize", "int8dq", "--quantize-config", '{"min_features": -1}'],
     "min_features must be an integer >= 0"),
    (["--device", "tpu"], "device must be one of"),
])
def test_bad_run_flags(capsys, home, png, argv, message):
    argv = [a.replace("{png}", png) for a in argv]
    code, err = run_cli(capsys, "run", "--model", "tiny-sd15", *argv) if "--model" not in argv \
        else run_cli(capsys, "run", *argv)
    assert code == 2
    assert_one_line(err, message)
    home()


def test_input_image_that_is_not_an_image(capsys, home, tmp_path):
    fake = write(tmp_path / "notes.png", "this is text, not a PNG")
    code, err = run_cli(capsys, "run", "--model", "tiny-sd15", "--input-image", fake)
    assert code == 2
    assert_one_line(err, "not a readable image")
    home()


def png_claiming(path: Path, width: int, height: int) -> str:
    """A small PNG whose header claims width x height (a decompression bomb or truncated)."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13]))
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return str(path)


@pytest.mark.parametrize("flag, size, message", [
    ("--input-image", 20000, "input_image is too large"),
    ("--input-image", 12000, "input_image is too large"),
    ("--input-image", 4000, "input_image is not a readable image"),  # truncated pixel data
    ("--control-image", 20000, "control_image is too large"),
])
def test_oversized_or_truncated_image_is_refused_in_preflight(capsys, home, tmp_path, flag,
                                                              size, message):
    image = png_claiming(tmp_path / "bomb.png", size, size)
    extra = ["--controlnet", "random"] if flag == "--control-image" else []
    code, err = run_cli(capsys, "run", "--model", "tiny-sd15", "--steps", "2", flag, image,
                        *extra)
    assert code == 2
    assert_one_line(err, message)
    home()


def test_missing_python_interpreter_is_refused(capsys, home, tmp_path):
    code, err = run_cli(capsys, "run", "--model", "tiny-sd15", "--python",
                        str(tmp_path / "no" / "python"))
    assert code == 2
    assert_one_line(err, "--python", "interpreter not found")
    home()


@pytest.mark.parametrize("kwargs, message", [
    ('{"foo": 1}', "StableDiffusionPipeline takes no 'foo'"),
    ('{"num_inference_steps": 5}', "may not set 'num_inference_steps'"),
    ('{"output_type": "latent"}', "may not set 'output_type'"),
])
def test_bad_extra_call_kwargs_are_refused_before_loading(capsys, home, kwargs, message):
    code, err = run_cli(capsys, "run", "--model", "tiny-sd15", "--extra-call-kwargs", kwargs)
    assert code == 2
    assert_one_line(err, message)
    home()


def test_reserved_kwarg_names_the_flag():
    from diffbench.engine.errors import ConfigError

    with pytest.raises(ConfigError, match="use --steps"):
        RunConfig(extra_call_kwargs={"num_inference_steps": 5})


def test_model_folder_with_empty_model_index(capsys, home, tmp_path):
    folder = tmp_path / "pipe"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    code, err = run_cli(capsys, "run", "--model", str(folder))
    assert code == 2
    assert_one_line(err, "model_index.json has no _class_name")
    home()


def test_input_image_that_is_a_folder(capsys, home, tmp_path):
    code, err = run_cli(capsys, "run", "--model", "tiny-sd15", "--input-image", str(tmp_path))
    assert code == 2
    assert_one_line(err, "input_image is not a file")
    home()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file; the folder case above "
                    "covers an input that cannot be read")
def test_unreadable_input_image(capsys, home, png):
    os.chmod(png, 0)
    try:
        code, err = run_cli(capsys, "run", "--model", "tiny-sd15", "--input-image", png)
    finally:
        os.chmod(png, stat.S_IRUSR | stat.S_IWUSR)
    assert code == 2
    assert_one_line(err, "not readable")
    home()


def unwritable_folder(tmp: Path) -> Path:
    """A folder that refuses new files: 0555 for a normal user; sysfs for root."""
    if os.geteuid() != 0:
        folder = tmp / "read-only"
        folder.mkdir(exist_ok=True)
        folder.chmod(0o555)
        return folder
    if not os.path.isdir("/sys"):  # pragma: no cover
        pytest.skip("root without a folder it cannot write to")
    return Path("/sys")


@pytest.mark.parametrize("where", ["missing/run.toml", "blocker/run.toml", ".", "READONLY"])
def test_run_export_path_refused_before_running(capsys, home, where):
    (home.tmp / "blocker").write_text("a regular file")
    target = unwritable_folder(home.tmp) / "run.toml" if where == "READONLY" \
        else home.tmp / where
    code, err = run_cli(capsys, "run", "--model", "tiny-sd15", "--steps", "1", "--export",
                        str(target))
    assert code == 2
    assert_one_line(err, "cannot write")
    home()  # nothing ran, nothing recorded


# ---------------------------------------------------------------------------- profiles
@pytest.mark.parametrize("text, message", [
    ('steps = "ten"\n', "key 'steps' must be int"),
    ('model = "tiny-sd15"\nturbo = true\n', "unknown key 'turbo'"),
    ('height = 4096.5\n', "key 'height' must be int"),
    ('seed = -3\n', "seed must be between 0"),
    ('width = 123456789\n', "width must be between 8 and 8192"),
    ('steps = [1, 2]\n', "key 'steps' must be int"),
    ('this is not = = toml\n', "not valid TOML"),
    ('compiler_config = "{oops"\n', "compiler_config is not valid JSON"),
])
def test_bad_profiles(capsys, home, tmp_path, text, message):
    profile = write(tmp_path / "bad.toml", text)
    code, err = run_cli(capsys, "run", "--profile", profile)
    assert code == 2
    assert_one_line(err, message)
    home()


def test_profile_that_is_missing_a_folder_or_unknown(capsys, home, tmp_path):
    for name, message in ((str(tmp_path / "gone.toml"), "profile file not found"),
                          (str(tmp_path) + os.sep, "is a folder, not a profile file"),
                          ("no-such-profile", "unknown profile 'no-such-profile'")):
        code, err = run_cli(capsys, "run", "--profile", name)
        assert code == 2
        assert_one_line(err, message)
    home()


def test_profile_with_binary_content(capsys, home, tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\x00\xff\xfe garbage \x89PNG")
    code, err = run_cli(capsys, "run", "--profile", str(path))
    assert code == 2
    assert_one_line(err, "binary.toml")
    home()


# ---------------------------------------------------------------------------- export / compare
def test_export_bad_requests(capsys, home, tmp_path):
    (tmp_path / "blocker").write_text("x")
    cases = [
        (["export", "-o", "x.toml"], "give the run ids"),
        (["export", "nope", "-o", "x.toml"], "no run 'nope'"),
        (["export", "seed", "-o", "x.toml"], "ambiguous"),
        (["export", "seed1", "-o", str(tmp_path / "missing" / "x.toml")],
         "folder does not exist"),
        (["export", "seed1", "-o", str(tmp_path / "blocker" / "x.toml")], "not a folder"),
        (["export", "seed1", "-o", str(tmp_path)], "is a folder"),
        (["export", "seed1", "-o", str(unwritable_folder(tmp_path) / "x.toml")],
         "permission denied"),
        (["export", "seed1", "--all", "-o", "x.toml"], "not both"),
        (["compare", "seed1", "nope"], "no run 'nope'"),
        (["history", "--delete", "nope"], "no run 'nope'"),
    ]
    for argv, message in cases:
        code, err = run_cli(capsys, *argv)
        assert code == 2, argv
        assert_one_line(err, message)
    assert not (tmp_path / "x.toml").exists()
    home()


def test_history_bad_flags_and_imports(capsys, home, tmp_path):
    code, err = run_cli(capsys, "history", "--limit", "-1")
    assert code == 2
    assert_one_line(err, "must be 0 or more")
    code, err = run_cli(capsys, "history", "--status", "exploded")
    assert code == 2
    assert_one_line(err, "invalid choice")
    code, err = run_cli(capsys, "history", "--import", str(tmp_path / "gone.toml"))
    assert code == 2
    assert_one_line(err, "export file not found")
    garbage = write(tmp_path / "garbage.toml", 'format = "diffbench-runs"\nformat_version = 1\n'
                    '[run]\nrun_id = "x"\n[metrics]\nit_per_s = "fast"\n')
    code, err = run_cli(capsys, "history", "--import", garbage)
    assert code == 2
    assert_one_line(err, "metric it_per_s has the wrong type")
    home()


def test_corrupt_history_gives_way_out_and_backup_survives(capsys, home):
    path = home.path
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"\x00garbage" * 512)
    code, err = run_cli(capsys, "history")
    assert code == 1
    assert_one_line(err, "damaged", "diffbench history --reset")
    assert run_cli(capsys, "history", "--reset")[0] == 0
    backups = list(path.parent.glob("history.sqlite.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == b"\x00garbage" * 512
    assert run_cli(capsys, "history")[0] == 0


# ---------------------------------------------------------------------------- child protocol
def scripted_child(tmp_path: Path, body: str) -> str:
    """An executable that plays the child: ignores its arguments, prints ``body``."""
    script = tmp_path / "child.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


HELLO = """echo '{"type": "hello", "protocol": 1, "pid": 1, "environment": {}}'\n"""


@pytest.mark.parametrize("body, status, message", [
    (HELLO + "echo 'not json at all'\nsleep 5\n", "failed", "not a JSON object"),
    (HELLO + "echo '[1, 2, 3]'\nsleep 5\n", "failed", "not a JSON object"),
    (HELLO + """printf '{"type": "StepFin'\n""", "failed", "ended mid-line (truncated)"),
    (HELLO, "failed", "without sending a result (event stream truncated)"),
    ("""echo '{"type": "hello", "protocol": 99}'\nsleep 5\n""", "failed",
     "child speaks protocol 99"),
    (HELLO + """echo '{"type": "result", "result": 7}'\n""", "failed",
     "result that is not an object"),
    (HELLO + """echo '{"type": "result", "result": {"status": "exploded"}}'\n""", "failed",
     "unknown run status"),
    ("echo 'Traceback (most recent call last):' >&2\necho '  File \"x\", line 1' >&2\n"
     "echo \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n", "failed",
     "child exited with code 1 before it started"),
    (HELLO + "kill -9 $$\n", "failed", "SIGKILL (out of memory?"),
])
def test_bad_child_streams(home, tmp_path, body, status, message):
    events = []
    result = run_in_child(RunConfig(), events.append, python=scripted_child(tmp_path, body))
    assert result.status == status
    assert message in result.error and "\n" not in result.error
    if "before it started" in message:
        assert result.error.endswith(": ModuleNotFoundError: No module named 'torch'")
    assert isinstance(events[-1], ev.RunFailed)
    History().add(result)  # the caller records it; nothing else changes
    home(extra=1)


def test_crash_after_run_finished_keeps_the_result(home, tmp_path):
    import json

    done = RunResult(run_id="scripted2", config={"model": "m"},
                     metrics=Metrics(it_per_s=3.0)).to_dict()
    body = HELLO + f"echo '{json.dumps({'type': 'RunFinished', 'result': done})}'\nkill -11 $$\n"
    result = run_in_child(RunConfig(), None, python=scripted_child(tmp_path, body))
    assert result.status == "finished" and result.metrics.it_per_s == 3.0
    assert any("ended badly after the run finished: child crashed with SIGSEGV" in n
               for n in result.notices)
    History().add(result)
    home(extra=1)


def test_unknown_event_type_and_fields_are_skipped(home, tmp_path):
    good = RunResult(run_id="scripted1", config={"model": "m"}).to_dict()
    import json

    body = HELLO + (
        """echo '{"type": "FromTheFuture", "x": 1}'\n"""
        """echo '{"type": "LogMessage", "level": "info", "text": "hi", "new_field": 1}'\n"""
        """echo '{"type": "LogMessage", "level": "info", "text": "kept"}'\n"""
        f"echo '{json.dumps({'type': 'result', 'result': good})}'\n")
    events = []
    result = run_in_child(RunConfig(), events.append, python=scripted_child(tmp_path, body))
    assert result.status == "finished"
    assert any("unknown event type 'FromTheFuture'" in n for n in result.notices)
    assert any("unknown fields ['new_field']" in n for n in result.notices)
    assert [e.text for e in events if isinstance(e, ev.LogMessage)] == ["kept"]
    home()


def worker(stdin: str, **env: str) -> tuple[int, list[dict], str]:
    """Run the real worker with ``stdin``; return (exit code, protocol lines, stderr)."""
    import json

    proc = subprocess.run([sys.executable, "-m", "diffbench.engine.worker"], input=stdin.encode(),
                          capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env})
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    return proc.returncode, lines, proc.stderr.decode()


@pytest.mark.parametrize("stdin, message", [
    ("", "no request on stdin"),
    ("{oops\n", "request is not JSON"),
    ("[1]\n", "request must be a JSON object"),
    ('{"protocol": 2, "config": {}}\n', "this worker speaks protocol 1"),
    ('{"protocol": 1}\n', "request has no 'config' object"),
    ('{"protocol": 1, "config": {"steps": "ten"}}\n', "steps must be an integer"),
    ('{"protocol": 1, "config": {"turbo": 1}}\n', "unknown setting(s): turbo"),
])
def test_worker_rejects_bad_requests(stdin, message):
    code, lines, _ = worker(stdin)
    assert code == 2
    assert lines[0]["type"] == "hello" and lines[0]["protocol"] == 1
    assert {"python", "torch", "torch_cuda_build", "gpus"} <= set(lines[0]["environment"])
    assert lines[-1]["type"] == "result" and lines[-1]["result"]["status"] == "failed"
    assert message in lines[-1]["result"]["error"]
    assert lines[-2]["type"] == "RunFailed" and "\n" not in lines[-2]["reason"]


def test_worker_rejects_a_bad_fault_spec():
    # the fault hook is the tests' own (tests/worker_hooks.py, through tests/sitecustomize.py)
    code, lines, _ = worker('{"protocol": 1, "config": {}}\n', DIFFBENCH_TEST_FAULT="melt@x",
                            PYTHONPATH=os.pathsep.join([str(ROOT / "src"),
                                                        str(ROOT / "tests")]))
    assert code == 2
    assert "DIFFBENCH_TEST_FAULT must be KIND[@N]" in lines[-1]["result"]["error"]


# ---------------------------------------------------------------------------- issue 18 inputs
@pytest.mark.parametrize("argv, message", [
    (["--prompt", "\udcff\udcfe"], "prompt is not valid text"),  # what $'\xff\xfe' arrives as
    (["--negative-prompt", "ok \udcff"], "negative_prompt is not valid text"),
    (["--prompt", "a" * 10_001], "at most 10,000 are accepted"),
    (["--extra-call-kwargs", '{"eta": "zzz"}'], "'eta' must be float for "
                                                "StableDiffusionPipeline, got 'zzz' (str)"),
    (["--extra-call-kwargs", '{"clip_skip": 1.5}'], "'clip_skip' must be int | None"),
    (["--extra-call-kwargs", '{"guidance_rescale": true}'], "'guidance_rescale' must be float"),
    (["--extra-call-kwargs", '{"zzz": 1}'], "StableDiffusionPipeline takes no 'zzz'"),
    (["--output-image", "/proc/x.png"], "not writable: /proc takes no new files"),
    (["--custom-pipeline", "{png}", "--trust-remote-code"], "tiny-sd15 is a built-in model"),
    (["--lora", "{bin}"], "is not .safetensors: pickled weights can run code"),
    (["--stall-timeout", "-1"], "--stall-timeout: must be 0 (off) or a positive"),
    (["--stall-timeout", "inf"], "--stall-timeout: must be 0 (off) or a positive"),
])
def test_issue_18_bad_run_inputs(capsys, home, png, tmp_path, argv, message):
    if not os.path.isdir("/proc") and "/proc/x.png" in argv:  # pragma: no cover
        pytest.skip("no /proc here")
    (tmp_path / "lora.bin").write_bytes(b"a pickle")
    argv = [a.replace("{png}", png).replace("{bin}", str(tmp_path / "lora.bin")) for a in argv]
    code, err = run_cli(capsys, "run", "--model", "tiny-sd15", *argv)
    assert code == 2
    assert_one_line(err, message)
    home()  # refused before loading: nothing recorded


def test_empty_ids_and_missing_gpus_are_refused(capsys, home):
    code, err = run_cli(capsys, "history", "--delete", "")
    assert code == 2
    assert_one_line(err, "run id must be a non-empty string")
    code, err = run_cli(capsys, "history", "--import", "")
    assert code == 2
    assert_one_line(err, "--import wants an export file")
    code, err = run_cli(capsys, "sweep", "--model", "tiny-sd15", "--grid", "steps=1,2",
                        "--gpus", "97,99", "--dry-run")
    assert code == 2
    assert_one_line(err, "--gpus")
    assert "not found" in err or "no GPU is visible here" in err
    home()


@pytest.mark.parametrize("text", [
    'steps = 3\nmodel = "tiny-sd15\n',         # unterminated string
    'prompt = """a\nb\n',                      # unterminated multi-line string
    '[cfg]\nx = 1\n[cfg]\nx = 2\n',            # a table twice
])
def test_toml_syntax_errors_are_one_line_everywhere(capsys, home, tmp_path, text):
    bad = write(tmp_path / "bad.toml", text)
    for argv in (["run", "--profile", bad], ["history", "--import", bad],
                 ["sweep", "--model", "tiny-sd15", "--grid", "steps=1,2", "--dry-run", bad]):
        code, err = run_cli(capsys, *argv)
        assert code == 2, argv
        assert_one_line(err, "bad.toml", "TOML")
    home()


def test_a_stored_row_with_undecodable_text_still_prints_and_exports(capsys, home, tmp_path):
    """An older diffbench stored ``--prompt $'\\xff\\xfe'`` as is: history, --json, export
    and export --all must not crash on it (the bytes show as "?")."""
    import json

    History().add(RunResult(run_id="surrogate01", started_at="2026-01-03T00:00:00+00:00",
                            config={"model": "tiny-sd15", "compiler": "none",
                                    "prompt": "\udcff\udcfe cat"}, notices=["\udcff"]))
    for argv in (["history"], ["history", "--json"], ["compare", "seed1", "surrogate01"]):
        code, err = run_cli(capsys, *argv)
        assert code == 0 and "Traceback" not in err, (argv, err)
    for argv in (["export", "surrogate01", "-o", str(tmp_path / "one.toml")],
                 ["export", "--all", "-o", str(tmp_path / "all.toml")]):
        code, err = run_cli(capsys, *argv)
        assert code == 0, err
    from diffbench.engine.export import read_toml

    [run] = read_toml(tmp_path / "one.toml")
    assert run.config["prompt"] == "?? cat"
    assert json.dumps(History().get("surrogate01").to_dict()).isascii()
    home(extra=1)
