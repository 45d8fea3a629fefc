"""Spread sweep cells over several devices: one child process per GPU, or a Ray cluster.

- :func:`device_workers` — ``--gpus all|0,1,...``: one worker per GPU; each cell runs in a
  fresh child process (diffbench.engine.session.Session.launch) that sees only its GPU
  (``CUDA_VISIBLE_DEVICES``). ``cpu:N`` gives N CPU workers (no GPU visible) — the same
  machinery on a machine without GPUs. A child that crashes or runs out of memory fails its
  own cell only.
- :func:`ray_workers` — ``--ray [ADDRESS]``: one Ray task per cell (``num_gpus=1`` on GPU
  clusters), each running the cell in a child process on whichever node Ray picks; results
  come back to the driver, which alone writes the history. Ray is an optional extra
  (``pip install 'diffbench[ray]'``).

Both return ``[(device_name, run_fn)]`` for :func:`diffbench.engine.sweep.run.run_sweep`,
which deals each cell to the next free worker.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from diffbench.engine.errors import ConfigError
from diffbench.engine.result import RunResult

RunFn = Callable[..., RunResult]
RAY_INSTALL_HINT = "Ray is not installed; install the extra: pip install 'diffbench[ray]' " \
                   "(or pip install ray)"


def visible_gpu_count() -> int:
    """GPUs NVML can see (0 without a driver). Cheap: no torch import."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no driver / no library: no GPUs
        return 0


def parse_devices(spec: str, gpu_count: Optional[int] = None) -> list[str]:
    """Device names for ``--gpus``: "all" -> every visible GPU ("0", "1", ...); "0,2" ->
    those GPU indices; "cpu:N" -> N CPU workers ("cpu0", "cpu1", ...).

    Raises:
        ConfigError: no GPU visible, an index that does not exist, a repeated index, or a
            malformed spec — one line.
    """
    spec = spec.strip().lower()
    if spec.startswith("cpu"):
        _, _, count = spec.partition(":")
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--gpus cpu:N wants a worker count, got {spec!r}")
        return [f"cpu{i}" for i in range(int(count))]
    count = visible_gpu_count() if gpu_count is None else gpu_count
    if spec == "all":
        if count == 0:
            raise ConfigError("--gpus all: no GPU is visible here (use cpu:N for CPU workers)")
        return [str(i) for i in range(count)]
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise ConfigError(f"--gpus wants 'all', a list of GPU indices like 0,1, or cpu:N; "
                          f"got {spec!r}")
    if len(set(parts)) != len(parts):
        raise ConfigError(f"--gpus lists a GPU twice: {spec!r}")
    missing = [p for p in parts if int(p) >= count]
    if missing and count == 0:
        raise ConfigError(f"--gpus {spec}: no GPU is visible here (use cpu:N for CPU workers)")
    if missing:
        raise ConfigError(f"--gpus: GPU {', '.join(missing)} not found ({count} visible)")
    return parts


def _child_runner(env: dict, python: Optional[str], timeout_s: Optional[float]) -> RunFn:
    """A child-process launcher (diffbench.engine.session.Session.launch) with ``env``; the
    sweep records the cells and attaches their baselines itself."""
    from diffbench.engine.session import Session

    return Session(record=False, keep_image=True, in_process=False, python=python, env=env,
                   timeout_s=timeout_s).launch


def device_workers(spec: str, python: Optional[str] = None,
                   timeout_s: Optional[float] = None,
                   gpu_count: Optional[int] = None) -> list[tuple[str, RunFn]]:
    """One worker per device of ``spec`` (see :func:`parse_devices`).

    GPU workers are named "cuda:N" (the physical index; inside its child the GPU is cuda:0)
    and set ``CUDA_VISIBLE_DEVICES=N``; CPU workers "cpuK" hide every GPU.

    Raises:
        ConfigError: as :func:`parse_devices`.
    """
    workers = []
    for device in parse_devices(spec, gpu_count):
        if device.startswith("cpu"):
            workers.append((device, _child_runner({"CUDA_VISIBLE_DEVICES": ""}, python,
                                                  timeout_s)))
        else:
            workers.append((f"cuda:{device}", _child_runner(
                {"CUDA_VISIBLE_DEVICES": device}, python, timeout_s)))
    return workers


def check_device_setting(cfg: Any) -> None:
    """A multi-device sweep picks the device per cell: refuse an explicit cuda:N.

    Raises:
        ConfigError: cfg.device is "cuda:N".
    """
    if str(cfg.device).startswith("cuda:"):
        raise ConfigError(f"--gpus chooses the GPU of each cell; drop --device {cfg.device} "
                          f"(use auto or cuda)")


# ------------------------------------------------------------------ Ray
def _ray_cell(config: dict, python: Optional[str], timeout_s: Optional[float]) -> dict:
    """The Ray task: run one cell in a child process on this node; return its result dict
    with ``config["sweep_device"]`` naming the node and GPU(s) Ray assigned."""
    import ray

    from diffbench.engine.config import RunConfig

    gpus = ray.get_gpu_ids()
    node = ray.get_runtime_context().get_node_id()[:8]
    # Ray sets CUDA_VISIBLE_DEVICES for this worker; the child inherits our environment.
    result = _child_runner({}, python, timeout_s)(RunConfig.from_dict(config), None, None)
    result.config["sweep_device"] = f"ray:{node}" + (
        f":gpu{','.join(str(g) for g in gpus)}" if gpus else ":cpu")
    return result.to_dict()


def ray_workers(address: Optional[str] = None, python: Optional[str] = None,
                timeout_s: Optional[float] = None, workers: Optional[int] = None,
                gpus_per_cell: Optional[float] = None) -> list[tuple[str, RunFn]]:
    """Workers that send each cell to Ray as one task (``num_gpus=1`` when the cluster has
    GPUs, else ``num_cpus=1``).

    Args:
        address: a Ray cluster ("auto", "ray://host:10001"); None starts a local instance.
        workers: cells in flight at once (default: the cluster's GPUs, else its CPUs).
        gpus_per_cell: override ``num_gpus`` per task.

    Raises:
        ConfigError: Ray is not installed (the message says how to install it) or cannot
            connect.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_INSTALL_HINT) from None
    if not ray.is_initialized():
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        kwargs: dict[str, Any] = dict(address=address, include_dashboard=False,
                                      log_to_driver=False, configure_logging=False)
        if address is None:  # local instance: workers import engine from this checkout
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": root}}
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - any connection failure, one line
            raise ConfigError(f"cannot start or reach Ray ({address or 'local'}): "
                              f"{str(exc).splitlines()[0]}") from None
    resources = ray.cluster_resources()
    cluster_gpus = int(resources.get("GPU", 0))
    num_gpus = gpus_per_cell if gpus_per_cell is not None else (1 if cluster_gpus else 0)
    count = workers or (cluster_gpus if num_gpus else int(resources.get("CPU", 1))) or 1
    task = ray.remote(_ray_cell).options(num_gpus=num_gpus, num_cpus=0 if num_gpus else 1,
                                         max_retries=0)

    def run(cfg: Any, on_event: Any = None, cancel: Any = None) -> RunResult:
        ref = task.remote(cfg.to_dict(), python, timeout_s)
        while True:
            done, _ = ray.wait([ref], timeout=0.5)
            if done:
                break
            if cancel is not None and cancel.is_set():
                ray.cancel(ref, force=True)
                return RunResult(status="cancelled", config=cfg.to_dict(),
                                 error="cancelled")
        try:
            return RunResult.from_dict(ray.get(ref))
        except Exception as exc:  # noqa: BLE001 - a lost node or worker fails this cell only
            return RunResult(status="failed", config=cfg.to_dict(),
                             error=f"Ray task failed: {str(exc).splitlines()[0]}")

    return [(f"ray#{i}", run) for i in range(count)]


def shutdown_ray() -> None:
    """Stop the local Ray instance started by :func:`ray_workers` (no-op otherwise)."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()


__all__ = ["RAY_INSTALL_HINT", "check_device_setting", "device_workers", "parse_devices",
           "ray_workers", "shutdown_ray", "visible_gpu_count"]
