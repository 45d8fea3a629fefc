"""`diffbench doctor`: what this machine can run, and exactly why not where it cannot.

:func:`collect` returns a :class:`DoctorReport` (plain data; the CLI prints it as a table, the
dashboard greys out what cannot run): the environment (python, torch and its CUDA build, GPU
name, compute capability, driver, memory, diffusers, transformers, the Hugging Face cache and
offline state, the history database) and one :class:`Check` per accelerator plugin of
diffbench.engine.accelerators' registry (compilers, then the stacked ones; quantization once per
mode).

Imports torch (to ask CUDA about the GPU): call it off the UI thread.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class Check:
    """Whether one backend can run here. ``reason`` says why not and what to install."""

    name: str
    kind: str  # "compiler", or a stacked plugin's category: "quantize" | "cache" | "lora" ...
    ok: bool
    reason: str = ""
    description: str = ""


@dataclass
class DoctorReport:
    """Environment facts (label -> value, None = not available) and backend checks."""

    device: str
    environment: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return dataclasses.asdict(self)

    def unavailable(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]


def _dist_version(name: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _truthy(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def torch_facts() -> tuple[dict[str, Any], str]:
    """(facts, device): torch version and CUDA build, GPU name, capability, memory (GiB).

    ``device`` is "cuda" when a GPU is usable, else "cpu". Never raises: a broken torch is
    reported in the facts.
    """
    facts: dict[str, Any] = {"torch": _dist_version("torch")}
    if facts["torch"] is None:
        facts["torch"] = "not installed (pip install torch)"
        return facts, "cpu"
    try:
        import torch
    except Exception as exc:  # a broken install must not break doctor
        facts["torch"] = f"{facts['torch']} (import failed: {' '.join(str(exc).split())[:120]})"
        return facts, "cpu"
    facts["torch"] = torch.__version__
    facts["torch CUDA build"] = torch.version.cuda or "none (CPU-only build)"
    device = "cpu"
    try:
        usable = torch.cuda.is_available()
    except Exception:  # pragma: no cover - driver trouble
        usable = False
    if usable:
        device = "cuda"
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        facts["GPU"] = f"{props.name} (x{torch.cuda.device_count()})"
        facts["compute capability"] = f"{props.major}.{props.minor}"
        facts["GPU memory"] = f"{props.total_memory / 2**30:.1f} GiB"
    else:
        facts["GPU"] = "none (no CUDA device visible)" if torch.version.cuda else \
            "not usable: torch is a CPU-only build"
    facts["driver"] = nvidia_driver()
    return facts, device


def nvidia_driver() -> Optional[str]:
    """NVIDIA driver version via NVML (nvidia-ml-py), or None without a driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # no library, no driver, no GPU: all mean "none"
        return None


def hf_facts() -> dict[str, Any]:
    """Hugging Face cache folder, number of cached model repos, and offline state."""
    try:
        from huggingface_hub import constants

        cache = constants.HF_HUB_CACHE
    except Exception:  # pragma: no cover - huggingface_hub comes with diffusers
        cache = os.path.join(os.path.expanduser("~"), ".cache", "huggingface", "hub")
    try:
        models = sum(1 for n in os.listdir(cache) if n.startswith("models--"))
    except OSError:
        models = 0
    offline = _truthy(os.environ.get("HF_HUB_OFFLINE"))
    return {
        "HF cache": f"{cache} ({models} model repo{'s' if models != 1 else ''})",
        "HF offline": "yes (HF_HUB_OFFLINE=1: nothing is downloaded)" if offline else
        "no (diffbench never downloads at run time; set HF_HUB_OFFLINE=1 to enforce it)",
    }


def history_fact() -> str:
    """The history database path and its state (runs stored, or the problem)."""
    from diffbench.engine.history import History, HistoryError

    history = History()
    if not history.path.exists():
        return f"{history.path} (not created yet)"
    try:
        return f"{history.path} ({history.count()} runs)"
    except HistoryError as exc:
        return f"PROBLEM: {exc}"


def backend_checks(device: str) -> list[Check]:
    """One Check per registered plugin (diffbench.engine.accelerators' table): every compiler
    (config order), then the stacked plugins in table order, quantization once per mode."""
    from diffbench.engine import accelerators
    from diffbench.engine.config import COMPILERS

    checks = []
    backends = accelerators.all_backends()
    order = [n for n in COMPILERS if n in backends] + sorted(set(backends) - set(COMPILERS))
    for name in order:
        backend = backends[name]
        ok, reason = _safe_available(lambda b=backend: b.available(device))
        checks.append(Check(name, "compiler", ok, reason, getattr(backend, "description", "")))
    for plugin in accelerators.stacked():
        kind = plugin.category or plugin.name
        for label, probe in _probes(plugin, device):
            ok, reason = _safe_available(probe)
            checks.append(Check(label, kind, ok, reason, plugin.description))
    return checks


def _probes(plugin: Any, device: str) -> list:
    """(check name, availability probe) pairs of one stacked plugin: one per entry of its
    ``choices`` (quantization: one per mode), else one under its own name."""
    from diffbench.engine.config import RunConfig

    if plugin.choices:
        return [(label, lambda o=overrides: plugin.available_for(RunConfig(**o), device))
                for label, overrides in plugin.choices]
    return [(plugin.name, lambda: plugin.available(device))]


def _safe_available(probe) -> tuple[bool, str]:
    # available() must not raise by contract; doctor still survives a backend that does.
    try:
        ok, reason = probe()
        return bool(ok), str(reason or "")
    except Exception as exc:
        return False, f"the availability check failed: {type(exc).__name__}: {exc}"


def collect(device: Optional[str] = None) -> DoctorReport:
    """Everything doctor reports. ``device`` None = cuda when usable, else cpu.

    Never raises for a missing or broken component: that is what it reports.
    """
    environment: dict[str, Any] = {
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(terse=True),
    }
    facts, detected = torch_facts()
    environment.update(facts)
    for dist in ("diffusers", "transformers", "triton", "torchao", "nexfort", "onediffx"):
        environment[dist] = _dist_version(dist)
    environment.update(hf_facts())
    environment["history"] = history_fact()
    device = device or detected
    return DoctorReport(device=device, environment=environment, checks=backend_checks(device))


def report_from_dict(data: dict[str, Any]) -> DoctorReport:
    """Inverse of :meth:`DoctorReport.to_dict`. Raises ValueError on a malformed dict."""
    try:
        checks = [Check(**c) for c in data.get("checks", [])]
        return DoctorReport(device=str(data["device"]), environment=dict(data["environment"]),
                            checks=checks)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a doctor report: {exc}") from None


def collect_in(python: str, device: Optional[str] = None, timeout_s: float = 180.0
               ) -> DoctorReport:
    """:func:`collect` run by another interpreter (``--python``: e.g. a venv with nexfort).

    diffbench itself need not be installed there: the child gets our package root on
    PYTHONPATH, as run children do.

    Raises:
        DiffbenchError: the interpreter cannot be started, fails, or times out (one line).
    """
    import json
    import subprocess

    from diffbench.engine.child_process import child_env
    from diffbench.engine.errors import DiffbenchError

    command = [python, "-m", "diffbench.engine.doctor"] + (["--device", device] if device else [])
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              env=child_env())
    except OSError as exc:
        raise DiffbenchError(f"cannot start {python}: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise DiffbenchError(f"{python} did not answer within {timeout_s:g} s") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise DiffbenchError(f"{python} could not run the checks: {last[:300]}")
    try:
        return report_from_dict(json.loads(proc.stdout))
    except ValueError as exc:
        raise DiffbenchError(f"{python} gave no usable report ({exc})") from None


if __name__ == "__main__":  # `python -m diffbench.engine.doctor [--device D]`: JSON for collect_in
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m diffbench.engine.doctor")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    print(json.dumps(collect(parser.parse_args().device).to_dict()))

