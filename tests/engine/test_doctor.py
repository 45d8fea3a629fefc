"""doctor: structured report of the environment and every backend, and the CLI table."""

from __future__ import annotations

import json

from diffbench.engine import accelerators
from diffbench.cli.main import main
from diffbench.engine.doctor import collect


def test_report_covers_every_registered_backend_with_reasons(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path))
    report = collect("cpu")
    names = [c.name for c in report.checks]
    assert set(accelerators.all_backends()) <= set(names)
    assert names[0] == "none"
    for check in report.checks:
        # every unavailable backend says why (and the reason is one line)
        assert check.ok or (check.reason and "\n" not in check.reason), check
    none = next(c for c in report.checks if c.name == "none")
    assert none.ok
    env = report.environment
    for key in ("python", "torch", "torch CUDA build", "GPU", "driver", "diffusers",
                "transformers", "HF cache", "HF offline", "history"):
        assert key in env
    assert str(tmp_path) in env["history"]


def test_cuda_only_backends_explain_themselves_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path))
    report = collect("cpu")
    cudagraph = next(c for c in report.checks if c.name == "cudagraph")
    assert not cudagraph.ok and "CUDA" in cudagraph.reason


def test_offline_state_and_broken_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    class Broken(accelerators.Accelerator):
        name = "broken-test-backend"

        def available(self, device="cuda"):
            raise RuntimeError("boom")

    monkeypatch.setitem(accelerators._REGISTRY, "broken-test-backend", Broken())
    report = collect("cpu")
    assert report.environment["HF offline"].startswith("yes")
    broken = next(c for c in report.checks if c.name == "broken-test-backend")
    assert not broken.ok and "RuntimeError: boom" in broken.reason


def test_doctor_reports_a_damaged_history(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path))
    (tmp_path / "history.sqlite").write_bytes(b"garbage" * 200)
    report = collect("cpu")
    assert report.environment["history"].startswith("PROBLEM:")
    assert "--reset" in report.environment["history"]


def test_cli_table_and_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path))
    assert main(["doctor", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Backends on cpu" in out and "cudagraph" in out and "unavailable" in out
    assert main(["doctor", "--device", "cpu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["device"] == "cpu" and any(c["name"] == "none" for c in data["checks"])


def test_doctor_of_another_interpreter(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path))
    assert main(["doctor", "--device", "cpu", "--json", "--python", sys.executable]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["environment"]["python"].endswith(f"({sys.executable})")
    assert main(["doctor", "--python", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert "cannot start" in err and err.count("\n") == 1
