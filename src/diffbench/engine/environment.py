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
    """Versions, host and device facts as strings: python, platform, torch, torch_cuda (CUDA
    the torch build targets), diffusers, transformers, the host (:func:`host`: CPU model,
    cores, load average now, host id), and on CUDA gpu, gpu_capability, gpu_memory_gib and
    driver. Never raises; unknown values are "unknown"."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": _version("torch"),
        "diffusers": _version("diffusers"),
        "transformers": _version("transformers"),
        "diffbench": _version("diffbench"),
    }
    env.update(host())
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


def host() -> dict[str, str]:
    """The host as strings: cpu_model (/proc/cpuinfo's "model name", else
    platform.processor()), cpu_cores (os.cpu_count(), logical), load_average (1, 5 and 15
    minute, os.getloadavg(), at the call) and host_id (12 hex digits of the SHA-256 of the
    host name: tells two machines apart without naming them). Missing facts are left out."""
    import hashlib
    import os

    out: dict[str, str] = {}
    model = _cpu_model()
    if model:
        out["cpu_model"] = model
    if os.cpu_count():
        out["cpu_cores"] = str(os.cpu_count())
    try:
        out["load_average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):  # Windows
        pass
    name = platform.node()
    if name:
        out["host_id"] = hashlib.sha256(name.encode()).hexdigest()[:12]
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or ""


#: Environment keys that name the machine (compare warns when two runs differ in one).
HOST_KEYS = ("host_id", "cpu_model", "cpu_cores", "gpu")


def different_hosts(a: dict, b: dict) -> list[str]:
    """The :data:`HOST_KEYS` two environments both record with different values: [] for the
    same host, or when either record predates them."""
    return [key for key in HOST_KEYS
            if a.get(key) is not None and b.get(key) is not None and a[key] != b[key]]


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
