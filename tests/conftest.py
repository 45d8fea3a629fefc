"""Test-wide settings: never touch the network or the user's own diffbench data.

Set before any engine module is imported: HF_HUB_OFFLINE=1 (no hub access) and
DIFFBENCH_HOME pointing at a temporary folder for the whole test run (history, caches,
images), removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_HOME = tempfile.mkdtemp(prefix="diffbench-test-home-")
os.environ["DIFFBENCH_HOME"] = _HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:  # noqa: ARG001
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def diffbench_home() -> str:
    """The test run's DIFFBENCH_HOME folder."""
    return _HOME


@pytest.fixture(scope="session")
def input_png(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A generated 96x80 RGB PNG (gradient) to use as an img2img / pix2pix input."""
    from PIL import Image

    path = tmp_path_factory.mktemp("inputs") / "input.png"
    image = Image.new("RGB", (96, 80))
    image.putdata([(x * 2, y * 3, (x + y) % 256) for y in range(80) for x in range(96)])
    image.save(path)
    return str(path)


@pytest.fixture
def run_with_closed_stdout():
    """``run(code, env, cwd=None, stderr_too=False) -> (exit code, stderr bytes)``: run
    ``python -c code`` whose stdout reader leaves before anything is read (``| true``; with
    ``stderr_too`` stderr shares that pipe, ``2>&1 | head -c1``). PYTHONUNBUFFERED is dropped
    from ``env``: output then sits in stdout's buffer, as for a user's shell."""
    import subprocess
    import sys

    def run(code: str, env: dict, cwd=None, stderr_too: bool = False) -> tuple[int, bytes]:
        env = {k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"}
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT if stderr_too else subprocess.PIPE,
                                env=env, cwd=cwd)
        proc.stdout.close()
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait(timeout=120)
        return proc.returncode, err

    return run
