"""Where things are, for tests in any folder under tests/.

ROOT is the repository, SRC the folder holding the ``diffbench`` package, TESTS the tests'
root (fakes.py, worker_hooks.py and sitecustomize.py live there, so a child started with
``PYTHONPATH=TESTS`` gets the tests' fault hooks).
"""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SRC = ROOT / "src"
