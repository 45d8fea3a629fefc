"""Start-up hook of Python processes that have tests/ on their PYTHONPATH (worker children of
the tests): installs tests/worker_hooks.py when DIFFBENCH_WORKER_RUN or DIFFBENCH_TEST_FAULT
is set, and does nothing otherwise."""

import os

if os.environ.get("DIFFBENCH_WORKER_RUN") or os.environ.get("DIFFBENCH_TEST_FAULT"):
    try:
        import worker_hooks

        worker_hooks.install()
    except Exception as exc:  # noqa: BLE001 - say why in the child's log, run unhooked
        import sys

        print(f"tests/sitecustomize: worker hooks not installed: {exc!r}", file=sys.stderr)
