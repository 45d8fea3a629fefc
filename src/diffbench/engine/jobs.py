"""Measurements other than a benchmark run, runnable in the worker child: the throughput fit
(:mod:`diffbench.engine.throughput`) and the parameter check (:mod:`diffbench.engine.check_params`).

A job request to ``python -m diffbench.engine.worker`` is a run request with two more keys:
``"job"`` (a name of :data:`JOBS`) and ``"job_args"`` (its arguments as JSON). The child
sends engine events as for a run, ``{"type": "job_progress", "data": {...}}`` lines for the
job's own progress (``{"point": [done, total, seconds]}`` for throughput,
``{"stage": "text"}`` for check-params), and last the usual ``result`` line whose RunResult
has status finished / failed / cancelled and, beside it, ``"job_result"`` (the job's output
as a dict) and ``"error_kind"`` (the DiffbenchError class name of a failure).

:func:`run_job` is the child's side (imports torch through the job); :func:`decode` turns
the parent's answer back into the job's result object or the error it raised.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

#: Jobs the worker runs besides a benchmark run.
JOBS = ("throughput", "check_params")

#: ``progress(data)``: one job_progress message.
Progress = Callable[[dict], None]


def run_job(name: str, cfg: Any, args: dict, on_event: Callable[[Any], None],
            progress: Progress, cancel: threading.Event) -> dict:
    """Run job ``name`` on ``cfg`` (a RunConfig) in this process; its result as a dict.

    Raises:
        ConfigError: an unknown job or bad arguments. DiffbenchError / RunCancelled: as the
        job raises them.
    """
    from diffbench.engine.errors import ConfigError

    if name == "throughput":
        from diffbench.engine.throughput import run_throughput

        result = run_throughput(
            cfg, args["steps"], int(args.get("repeats") or 3), on_event=on_event,
            on_point=lambda done, total, s: progress({"point": [done, total, s]}),
            cancel=cancel, threads=args.get("threads"))
        return result.to_dict()
    if name == "check_params":
        from diffbench.engine.check_params import check_param

        check = check_param(cfg, args["argument"], args.get("values"), on_event=on_event,
                            on_stage=lambda text: progress({"stage": text}), cancel=cancel)
        return check.to_dict()
    raise ConfigError(f"unknown job {name!r}; known: {', '.join(JOBS)}")


def serve(writer: Any, request: dict, cfg: Any, base: Any, cancel: threading.Event) -> int:
    """The worker's side of a job request: run it (:func:`run_job`), sending its events and
    job_progress lines through ``writer`` (diffbench.engine.worker.ProtocolWriter), then the
    result line (``base``: the request's RunResult, filled in here). Returns the worker's
    exit code, 0: a result was written whatever the job's outcome."""
    from diffbench.engine import events as ev
    from diffbench.engine.errors import DiffbenchError, RunCancelled
    from diffbench.engine.worker import _one_line

    def emit(event: Any) -> None:
        writer.send(ev.to_dict(event))

    def progress(data: dict) -> None:
        writer.send({"type": "job_progress", "data": data})

    extra: dict[str, Any] = {}
    try:
        job_result = run_job(request["job"], cfg, dict(request.get("job_args") or {}), emit,
                             progress, cancel)
    except RunCancelled as exc:
        base.status, base.error = "cancelled", _one_line(exc)
    except DiffbenchError as exc:
        base.status, base.error = "failed", _one_line(exc)
        extra["error_kind"] = type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - a bug or a crash: one line, never a traceback
        base.status, base.error = "failed", _one_line(exc)
    else:
        base.status, base.error = "finished", None
        extra["job_result"] = job_result
    data = base.to_dict()
    if base.status != "finished":
        writer.send(ev.to_dict(ev.RunFailed(reason=base.error or base.status,
                                            status=base.status, result=data)))
    writer.send({"type": "result", "result": data, **extra})
    return 0


def throughput_from_dict(data: dict) -> Any:
    """A :class:`diffbench.engine.throughput.ThroughputResult` from its ``to_dict()``."""
    from diffbench.engine.throughput import LineFit, ThroughputResult

    fit = data.get("fit")
    return ThroughputResult(
        config=dict(data.get("config") or {}), steps=[int(s) for s in data["steps"]],
        times_s=[float(t) for t in data["times_s"]],
        samples_s=[[float(t) for t in s] for s in data.get("samples_s") or []],
        fit=LineFit(base_s=fit["base_s"], per_step_s=fit["per_step_s"], r2=fit["r2"])
        if fit else None,
        warmup_s=data.get("warmup_s"), environment=dict(data.get("environment") or {}))


def check_from_dict(data: dict) -> Any:
    """A :class:`diffbench.engine.check_params.ParamCheck` from its ``to_dict()``."""
    from diffbench.engine.check_params import ParamCheck

    return ParamCheck(argument=data["argument"], values=tuple(data["values"]),
                      verdict=data["verdict"], base_delta=float(data["base_delta"]),
                      accel_delta=float(data["accel_delta"]),
                      accel_vs_base=tuple(data["accel_vs_base"]), message=data["message"],
                      config=dict(data.get("config") or {}))


_DECODERS = {"throughput": throughput_from_dict, "check_params": check_from_dict}


def decode(name: str, result: Any, job_result: Optional[dict],
           error_kind: Optional[str]) -> Any:
    """The job's result object from the child's answer (a RunResult plus ``job_result``).

    Raises:
        RunCancelled: the job was cancelled. The DiffbenchError subclass named by
        ``error_kind`` (DiffbenchError otherwise) with the child's one-line reason: the job
        failed, or the child crashed, was killed or timed out.
    """
    from diffbench.engine import errors

    if result.status == "cancelled":
        raise errors.RunCancelled(result.error or "cancelled")
    if result.status != "finished" or job_result is None:
        kind = getattr(errors, error_kind or "", None)
        if not (isinstance(kind, type) and issubclass(kind, errors.DiffbenchError)):
            kind = errors.DiffbenchError
        raise kind(result.error or f"{name} ended without a result")
    return _DECODERS[name](job_result)
