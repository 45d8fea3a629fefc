"""engine/ never imports textual; the dashboard module starts without torch."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys


from repo_paths import ROOT


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def test_engine_never_imports_textual():
    import diffbench.engine

    modules = sorted(m.name for m in pkgutil.walk_packages(diffbench.engine.__path__, "diffbench.engine."))
    assert "diffbench.engine.runner" in modules and "diffbench.engine.models.tiny" in modules
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
            "print('TEXTUAL', bad)\n"
            "ui = sorted(m for m in sys.modules if m.startswith(('diffbench.cli', 'diffbench.tui')))\n"
            "print('CLI_TUI', ui)\n")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TEXTUAL []" in proc.stdout
    assert "CLI_TUI []" in proc.stdout  # the engine imports neither the CLI nor the dashboard


def test_cheap_engine_modules_do_not_import_torch():
    # the dashboard and the CLI parent resolve models and profiles without paying for torch
    proc = _python("import sys\n"
                   "from diffbench.engine.models import resolve_source, list_builtins\n"
                   "from diffbench.engine.profiles import list_profiles, build_config\n"
                   "resolve_source('tiny-sd15'); list_builtins(); list_profiles()\n"
                   "build_config('tiny-sd15')\n"
                   "print('TORCH', 'torch' in sys.modules)\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TORCH False" in proc.stdout


def test_dashboard_imports_without_torch():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ImportError('torch blocked by test')\n"
            "        return None\n"
            "sys.meta_path.insert(0, Block())\n"
            "import diffbench.tui.app\n"
            "print('TORCH', 'torch' in sys.modules)\n")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TORCH False" in proc.stdout
