"""TOML export/import: exact round trips, layout, atomic writes and clear errors."""

from __future__ import annotations

import os
import sys

import pytest

from diffbench.engine import atomic
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError
from diffbench.engine.export import dumps, loads, read_toml, write_toml
from diffbench.engine.result import Metrics, RunResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def make_result(**overrides) -> RunResult:
    cfg = RunConfig(model="tiny-sd15", steps=4, height=64, width=64,
                    compiler_config={"mode": "max-autotune", "dynamic": True,
                                     "nested": {"a": 1, "off": None}})
    config = cfg.to_dict()
    config["dtype"] = "float32"
    fields = dict(
        config=config,
        environment={"python": "3.11.9", "torch": "2.13.0+cpu", "cuda": None,
                     "gpu": None, "diffusers": "0.42.1"},
        metrics=Metrics(load_s=0.51, warmup_s=1.25, inference_s=0.4321, it_per_s=9.87654321,
                        steps_run=4, first_step_ms=120.5, step_ms=[100.1, 101.2, 99.3],
                        step_ms_p50=100.1, step_ms_p90=101.0, step_ms_max=101.2,
                        peak_rss_gib=1.5, recompiles=0),
        image_path="/some/where/out.png",
        notices=["ignoring nexfort-only key 'mode'"],
    )
    fields.update(overrides)
    return RunResult(**fields)


def test_single_run_round_trips_exactly(tmp_path):
    result = make_result()
    path = write_toml([result], tmp_path / "run.toml")
    back = read_toml(path)
    assert len(back) == 1
    assert back[0].to_dict() == result.to_dict()


def test_single_run_uses_top_level_sections(tmp_path):
    path = write_toml([make_result()], tmp_path / "run.toml")
    doc = tomllib.loads(open(path).read())
    assert {"run", "config", "environment", "metrics", "steps"} <= set(doc)
    assert doc["steps"]["step_ms"] == [100.1, 101.2, 99.3]
    assert doc["steps"]["step_ms_p90"] == 101.0  # the JSON / history name
    assert "step_ms" not in doc["metrics"] and doc["metrics"]["it_per_s"] == 9.87654321
    # None is omitted: no CUDA on this run, and error is None
    assert "cuda" not in doc["environment"] and "error" not in doc["run"]
    assert "environment.cuda" in doc["run"]["null_keys"]
    assert "config.compiler_config.nested.off" in doc["run"]["null_keys"]
    # None-default RunConfig fields are restored without being listed
    assert "config.lora" not in doc["run"]["null_keys"]


def test_earlier_step_names_are_still_read(tmp_path):
    result = make_result()
    path = write_toml([result], tmp_path / "run.toml")
    text = open(path).read().replace("step_ms_p50 =", "p50_ms =").replace(
        "step_ms_p90 =", "p90_ms =").replace("step_ms_max =", "max_ms =")
    assert "p90_ms = 101.0" in text
    (tmp_path / "old.toml").write_text(text)
    [back] = read_toml(tmp_path / "old.toml")
    assert back.to_dict() == result.to_dict()


def test_many_runs_round_trip_as_array_of_tables(tmp_path):
    results = [make_result(),
               make_result(status="failed", error="child killed by SIGKILL (out of memory?)",
                           metrics=Metrics(load_s=0.2), image_path=None, notices=[],
                           log_tail="Traceback ...\r\nprogress 50%\rprogress 100%\n"),
               make_result(status="cancelled", config={}, environment={})]
    path = write_toml(results, tmp_path / "many.toml")
    text = open(path).read()
    assert "[[runs]]" in text and "[runs.metrics]" in text
    back = read_toml(path)
    assert [r.to_dict() for r in back] == [r.to_dict() for r in results]


def test_special_floats_and_unicode_round_trip(tmp_path):
    result = make_result(metrics=Metrics(psnr_db=float("inf"), it_per_s=1e-300),
                         notices=["naïve \"quoted\" ✓\nsecond line"])
    back = read_toml(write_toml([result], tmp_path / "x.toml"))[0]
    assert back.metrics.psnr_db == float("inf")
    assert back.metrics.it_per_s == 1e-300
    assert back.notices == result.notices


def test_export_overwrites_atomically_and_leaves_no_temp(tmp_path):
    path = tmp_path / "run.toml"
    write_toml([make_result(run_id="first")], path)
    write_toml([make_result(run_id="second")], path)
    assert read_toml(path)[0].run_id == "second"
    assert os.listdir(tmp_path) == ["run.toml"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~umask)


def test_export_permissions_follow_umask_and_the_replaced_file(tmp_path):
    """As open() would: a new file gets 0666 less the umask; a replaced file keeps its mode."""
    old = os.umask(0o077)
    try:
        private = tmp_path / "private.toml"
        write_toml([make_result()], private)
        assert os.stat(private).st_mode & 0o777 == 0o600
        os.umask(0o002)
        shared = tmp_path / "shared.toml"
        write_toml([make_result()], shared)
        assert os.stat(shared).st_mode & 0o777 == 0o664
        os.chmod(shared, 0o640)
        write_toml([make_result(run_id="again")], shared)
        assert os.stat(shared).st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_export_to_missing_folder_is_one_line_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        write_toml([make_result()], tmp_path / "nope" / "run.toml")
    assert "folder does not exist" in str(err.value) and "\n" not in str(err.value)


def test_export_under_a_regular_file_is_one_line_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        write_toml([make_result()], blocker / "run.toml")


def test_export_onto_a_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        write_toml([make_result()], tmp_path)


def test_export_to_read_only_folder(tmp_path):
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    elif sys.platform.startswith("linux") and os.path.isdir("/sys"):
        # root may write into any 0555 folder; sysfs refuses new files even to root
        folder = tmp_path.__class__("/sys")
    else:  # pragma: no cover
        pytest.skip("running as root without a folder root cannot write to")
    try:
        with pytest.raises(ConfigError, match="permission denied") as err:
            write_toml([make_result()], folder / "run.toml")
        assert "\n" not in str(err.value)
    finally:
        if folder.parent == tmp_path:
            folder.chmod(0o755)


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "run.toml"
    write_toml([make_result(run_id="old")], path)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(ConfigError, match="no space left"):
        write_toml([make_result(run_id="new")], path)
    monkeypatch.undo()
    assert read_toml(path)[0].run_id == "old"
    assert os.listdir(tmp_path) == ["run.toml"]


def test_nothing_to_export():
    with pytest.raises(ConfigError, match="nothing to export"):
        dumps([])


@pytest.mark.parametrize("text, message", [
    ("this is = = not toml", "not valid TOML"),
    ('title = "x"\n', "not a diffbench export"),
    ('format = "diffbench-runs"\nformat_version = 99\n', "upgrade diffbench"),
    ('format = "diffbench-runs"\nformat_version = 1\n[run]\nstatus = "finished"\n',
     "no run_id"),
    ('format = "diffbench-runs"\nformat_version = 1\n[run]\nrun_id = "a"\nstatus = "odd"\n',
     "unknown run status"),
    ('format = "diffbench-runs"\nformat_version = 1\n[run]\nrun_id = "a"\n'
     '[metrics]\nit_per_s = "fast"\n', "metric it_per_s has the wrong type"),
    ('format = "diffbench-runs"\nformat_version = 1\nruns = 3\n', "array of tables"),
    ('format = "diffbench-runs"\nformat_version = 1\n[run]\nrun_id = "a"\nnotices = "x"\n',
     "notices must be a list of strings"),
    ('format = "diffbench-runs"\nformat_version = 1\n[run]\nrun_id = "a"\nerror = 3\n',
     "error must be a string"),
])
def test_bad_import_files_give_one_line_errors(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        loads(text, source="bad.toml")
    assert "\n" not in str(err.value)


def test_read_missing_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_toml(tmp_path / "missing.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_toml(binary)


def test_export_through_a_symlink_writes_the_linked_file(tmp_path):
    """open() follows a link; an atomic rename onto the link's name would replace the link
    with a plain file and never write its target."""
    from diffbench.engine.atomic import write_text

    real = tmp_path / "real.toml"
    real.write_text("old")
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_export_onto_a_fifo_or_device_is_refused(tmp_path):
    """A FIFO (or a device node such as /dev/null) at the target must survive: refused in one
    line, never replaced by a regular file."""
    import os
    import stat

    from diffbench.engine.atomic import write_text
    from diffbench.engine.errors import ConfigError

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file") as info:
        write_text(fifo, "x")
    assert "\n" not in str(info.value)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
