"""`diffbench run --compile-cache-dir` and where images go with --no-history."""

from __future__ import annotations

import os
import subprocess
import sys

from diffbench.engine.accelerators.compile_cache import cache_dir
from diffbench.cli.main import main as cli
from diffbench.engine.config import RunConfig
from diffbench.engine.export import read_toml

from repo_paths import ROOT


def test_cache_dir_config_field_wins_over_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_CACHE_DIR", str(tmp_path / "env-root"))
    assert cache_dir(RunConfig()) == \
        str(tmp_path / "env-root" / "compile" / "tiny-sd15__none")
    assert cache_dir(RunConfig(profile="sdxl-fast", compiler="compile")) == \
        str(tmp_path / "env-root" / "compile" / "sdxl-fast__tiny-sd15__compile")
    mine = tmp_path / "mine"
    assert cache_dir(RunConfig(compile_cache_dir=str(mine))) == str(mine)


def test_cli_compile_cache_dir_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DIFFBENCH_CACHE_DIR", str(tmp_path / "env-root"))
    folder = tmp_path / "my-cache"
    export = tmp_path / "r.toml"
    code = cli(["run", "--model", "tiny-sd15", "--steps", "2", "--height", "64", "--width",
                "64", "--warmups", "0", "--compiler", "compile", "--compiler-config",
                '{"backend": "aot_eager", "compile_vae": false}', "--compile-cache-dir",
                str(folder), "--in-process", "--no-history", "--export", str(export)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    text = "".join((captured.out + captured.err).split())  # rich wraps long lines
    assert f"compilecachecold:{folder}" in text
    assert (folder / "inductor").is_dir()
    assert not (tmp_path / "env-root").exists()  # the flag won over the environment
    [result] = read_toml(export)
    assert result.config["compile_cache_dir"] == str(folder)
    assert result.metrics.warmup_cache == "cold"


class _Result:
    """The fields keep_image reads, with a real PIL image."""

    def __init__(self) -> None:
        from PIL import Image

        self.image = Image.new("RGB", (8, 8), "red")
        self.image_path = None
        self.status = "finished"
        self.run_id = "r1"
        self.notices: list = []


def test_keep_image_respects_keep_image_env(tmp_path, monkeypatch):
    from diffbench.engine.worker import KEEP_IMAGE_ENV, keep_image

    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path))
    monkeypatch.setenv(KEEP_IMAGE_ENV, "0")
    result = _Result()
    keep_image(result)
    assert result.image_path is None and not (tmp_path / "images").exists()
    monkeypatch.delenv(KEEP_IMAGE_ENV)
    keep_image(result)
    assert result.image_path == str(tmp_path / "images" / "r1.png")
    assert os.path.isfile(result.image_path)


def test_no_history_child_run_keeps_no_image(tmp_path):
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "diffbench.cli.main", "run", "--model", "tiny-sd15", "--steps", "2",
         "--height", "64", "--width", "64", "--warmups", "0", "--no-history"],
        capture_output=True, text=True, cwd=tmp_path, timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "DIFFBENCH_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert "Iterations per second" in proc.stdout
    images = home / "images"
    assert not images.exists() or not any(images.iterdir())
