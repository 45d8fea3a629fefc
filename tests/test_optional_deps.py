"""Optional packages (peft, scikit-image, torchao) live in extras and fail with one line naming
the extra; pyproject's bounds say why; tomllib is imported behind a version guard.

A missing package is simulated by ``sys.modules[name] = None`` (``import name`` then raises
ImportError and importlib.util.find_spec returns None), in this process or a subprocess.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from diffbench.engine import extras
from diffbench.engine.errors import AcceleratorUnavailableError, ConfigError

from repo_paths import ROOT
LORA_HINT = "LoRA needs peft: pip install 'diffbench[lora]'"
QUALITY_HINT = "PSNR/SSIM need scikit-image: pip install 'diffbench[quality]'"


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _cli(args: list[str], hide: tuple[str, ...], home: Path) -> subprocess.CompletedProcess:
    """``diffbench ARGS`` in a fresh interpreter where the ``hide`` packages are missing."""
    code = ("import sys\n"
            f"for name in {hide!r}:\n"
            "    sys.modules[name] = None\n"
            "from diffbench.cli.main import main\n"
            f"sys.exit(main({args!r}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "DIFFBENCH_HOME": str(home),
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


# ------------------------------------------------------------------ pyproject and hints
def test_each_optional_package_is_in_its_extra_and_not_a_core_dependency():
    project = _pyproject()["project"]
    core = " ".join(project["dependencies"]).lower()
    optional = project["optional-dependencies"]
    for extra in extras.EXTRAS.values():
        assert not re.search(rf"\b{re.escape(extra.package)}\b", core), extra.package
        assert any(req.startswith(extra.package + ">=") for req in optional[extra.extra])
        hint = extra.hint()
        assert "\n" not in hint and f"pip install 'diffbench[{extra.extra}]'" in hint
    # CI installs .[test]: LoRA and PSNR/SSIM tests keep running there
    for package in ("peft", "scikit-image"):
        assert any(req.startswith(package + ">=") for req in optional["test"])
    assert extras.hint("peft") == LORA_HINT and extras.hint("skimage") == QUALITY_HINT


def test_every_lower_bound_says_which_api_sets_it():
    """Each requirement with a lower bound has its comment on its line or the line above."""
    lines = (ROOT / "pyproject.toml").read_text().splitlines()
    start = lines.index("dependencies = [")
    end = lines.index("[project.scripts]")
    unexplained = [line.strip() for above, line in zip(lines[start - 1:end], lines[start:end])
                   if ">=" in line.split("#")[0] and "#" not in line
                   and not above.strip().startswith("#")]
    assert not unexplained, unexplained


# ------------------------------------------------------------------ peft (LoRA)
def test_lora_without_peft_is_one_line_from_the_cli(tmp_path):
    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"")  # never read: the missing package is reported first
    proc = _cli(["run", "--model", "tiny-sd15", "--lora", str(lora), "--no-history"],
                ("peft",), tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"diffbench: error: {LORA_HINT}\n"


def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)
    assert extras.missing("peft")
    with pytest.raises(ConfigError, match=re.escape(LORA_HINT)):
        extras.require("peft")
    with pytest.raises(AcceleratorUnavailableError, match=re.escape(LORA_HINT)):
        extras.require("peft", AcceleratorUnavailableError)


def test_a_broken_install_is_not_reported_as_missing(monkeypatch, tmp_path):
    """An installed package failing on one of its own imports keeps its real error."""
    package = tmp_path / "peft"
    package.mkdir()
    (package / "__init__.py").write_text("import diffbench_no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "peft", raising=False)
    with pytest.raises(ModuleNotFoundError, match="diffbench_no_such_module"):
        extras.require("peft")


# ------------------------------------------------------------------ torchao (quantize)
def test_quantize_without_torchao_is_one_line_from_the_cli(tmp_path):
    proc = _cli(["run", "--model", "tiny-sd15", "--quantize", "int8wo", "--no-history"],
                ("torchao",), tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("diffbench: error: quantize 'int8wo' cannot run here: "
                                  "torchao is not installed (pip install 'diffbench[quantize]'")


def test_quantize_apply_without_torchao_names_the_extra(monkeypatch):
    """Past the preflight (e.g. a plugin calling apply directly) the hint is the same."""
    from diffbench.engine import families
    from diffbench.engine.accelerators import quantize
    from diffbench.engine.config import RunConfig

    monkeypatch.setitem(sys.modules, "torchao", None)
    with pytest.raises(AcceleratorUnavailableError,
                       match=re.escape("quantization needs torchao: pip install "
                                       "'diffbench[quantize]'")):
        quantize.apply(object(), families.get("sd15"),
                       RunConfig(model="tiny-sd15", quantize="int8wo"), lambda e: None)


# ------------------------------------------------------------------ scikit-image (quality)
@pytest.fixture
def two_images(tmp_path):
    from PIL import Image

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (16, 16), (10, 20, 30)).save(a)
    Image.new("RGB", (16, 16), (10, 20, 31)).save(b)
    return str(a), str(b)


def test_psnr_without_scikit_image_is_a_one_line_notice(two_images, monkeypatch):
    from diffbench.engine import quality
    from diffbench.engine.result import Metrics, RunResult

    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(ConfigError, match=re.escape(QUALITY_HINT)):
        quality.compare_images(*two_images)
    cfg = {"model": "tiny-sd15", "task": "t2i", "height": 16, "width": 16, "seed": 1,
           "steps": 2, "prompt": "p"}
    base = RunResult(run_id="base00000001", config={**cfg, "compiler": "none"},
                     image_path=two_images[0], metrics=Metrics())
    run = RunResult(run_id="run000000002", config={**cfg, "compiler": "cudagraph"},
                    image_path=two_images[1], metrics=Metrics())

    class OneBaseline:
        def find_baseline(self, result):
            return base

    assert quality.attach_baseline(run, OneBaseline()) is False  # the run itself stands
    assert run.metrics.psnr_db is None
    assert run.notices == [f"no similarity to baseline base00000001: {QUALITY_HINT}"]


def test_compare_without_scikit_image_prints_the_hint_not_a_traceback(two_images, tmp_path,
                                                                       monkeypatch):
    from diffbench.engine.history import History
    from diffbench.engine.result import Metrics, RunResult

    home = tmp_path / "home"
    monkeypatch.setenv("DIFFBENCH_HOME", str(home))
    history = History()
    cfg = {"model": "tiny-sd15", "task": "t2i", "height": 16, "width": 16, "seed": 1}
    for run_id, compiler, image in (("aaaa00000001", "none", two_images[0]),
                                    ("bbbb00000002", "cudagraph", two_images[1])):
        history.add(RunResult(run_id=run_id, config={**cfg, "compiler": compiler},
                              image_path=image, metrics=Metrics(it_per_s=10.0)))
    proc = _cli(["compare", "aaaa", "bbbb"], ("skimage",), home)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"image B vs A: not compared ({QUALITY_HINT})" in proc.stdout


async def test_the_dashboard_shows_the_hint_with_its_brackets(tmp_path, monkeypatch):
    """A run failing on a missing extra: the toast shows "diffbench[lora]" as typed (Textual
    markup would take "[lora]" for a style tag and drop it)."""
    from textual.content import Content

    from diffbench.tui.app import DiffbenchApp
    from fakes import FakeEngine, MemoryHistory, wait_until

    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    shown = []

    class App(DiffbenchApp):
        def notify(self, message, *, markup=True, **kwargs):  # noqa: D102
            shown.append(Content.from_markup(message).plain if markup else message)
            return super().notify(message, markup=markup, **kwargs)

    engine = FakeEngine(fail_with=LORA_HINT)
    app = App(engine=engine, history=MemoryHistory(), export_dir=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and engine.calls)
        await pilot.pause()
    assert f"Failed tiny-sd15: {LORA_HINT}" in shown


# ------------------------------------------------------------------ the core without extras
def test_a_run_needs_none_of_the_extras(tmp_path):
    proc = _cli(["run", "--model", "tiny-sd15", "--steps", "2", "--height", "64", "--width",
                 "64", "--warmups", "0", "--in-process", "--no-history"],
                ("peft", "skimage", "torchao"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ------------------------------------------------------------------ Python 3.10
def _guarded(node: ast.AST, parents: dict) -> bool:
    """Whether an ``import tomllib`` sits under a version check or an ImportError handler."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
            return True
        if isinstance(node, ast.Try) and any(
                handler.type is not None and re.search(r"\b(ModuleNotFound|Import)Error\b",
                                                        ast.unparse(handler.type))
                for handler in node.handlers):
            return True
    return False


def test_tomllib_is_imported_behind_a_version_guard():
    """requires-python is >=3.10 and tomllib came with 3.11: every import of it has the
    tomli fallback (tomli is a dependency for Python < 3.11)."""
    assert _pyproject()["project"]["requires-python"] == ">=3.10"
    bare = []
    for folder in ("src", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            parents = {child: node for node in ast.walk(tree)
                       for child in ast.iter_child_nodes(node)}
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) else []
                if "tomllib" in names and not _guarded(node, parents):
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bare, bare
