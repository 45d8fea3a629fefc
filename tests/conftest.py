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
