"""What the run ran on: library versions and the device. Cheap and never raises.

:func:`collect` returns a flat dict of strings (the [environment] section of an export).
:func:`detect_device` guesses the default device without importing torch when possible.
"""

from __future__ import annotations

import platform
import sys
from typing import Any


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - not installed
        return "not installed"


def collect(device: str | None = None) -> dict[str, Any]:
    """Versions and device facts as strings: python, platform, torch, torch_cuda (CUDA the
    torch build targets), diffusers, transformers, and on CUDA gpu, gpu_capability,
    gpu_memory_gib and driver. Never raises; unknown values are "unknown"."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": _version("torch"),
        "diffusers": _version("diffusers"),
        "transformers": _version("transformers"),
        "diffbench": _version("diffbench"),
    }
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_cuda"] = torch.version.cuda or "none"
        env["device"] = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        env["cpu_threads"] = str(torch.get_num_threads())
        if env["device"].startswith("cuda") and torch.cuda.is_available():
            index = torch.device(env["device"]).index or 0
            props = torch.cuda.get_device_properties(index)
            env["gpu"] = props.name
            env["gpu_capability"] = f"{props.major}.{props.minor}"
            env["gpu_memory_gib"] = f"{props.total_memory / 1024 ** 3:.1f}"
            env["driver"] = _nvml_driver()
    except Exception:  # noqa: BLE001 - environment facts are best effort
        env.setdefault("device", str(device or "unknown"))
    return env


def _nvml_driver() -> str:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
            return driver.decode() if isinstance(driver, bytes) else str(driver)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001
        return "unknown"


def detect_device(requested: str = "auto") -> str:
    """Resolve "auto" to "cuda" or "cpu"; other values pass through.

    Uses torch if it is already imported, else NVML (cheap) so callers that have not loaded
    torch (the dashboard, the CLI parent of a child run) stay fast. Never raises.
    """
    if requested != "auto":
        return requested
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            return "cuda" if torch.cuda.is_available() else "cpu"
        except Exception:  # noqa: BLE001
            return "cpu"
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return "cuda" if pynvml.nvmlDeviceGetCount() > 0 else "cpu"
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no driver, no GPU
        return "cpu"
