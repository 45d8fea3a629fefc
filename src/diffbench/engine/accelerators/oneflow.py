"""``oneflow``: OneDiff's OneFlow backend through ``onediffx.compile_pipe(pipe)``.

As the seed's script, the pipeline is handed to ``compile_pipe`` with no options. OneFlow ships
its own CUDA runtime and wheels for few Python versions; available() reads the installed
metadata only (importing a mismatched oneflow can abort the interpreter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diffbench.engine.accelerators.base import Accelerator
from diffbench.engine.accelerators.onediff import ISOLATION_HINT, backend_available, compile_pipe
from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.accelerators.base import AcceleratorState
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec


class OneFlow(Accelerator):
    """``--compiler oneflow``: onediffx.compile_pipe(pipe) with the OneFlow backend."""

    name = "oneflow"
    description = "OneDiff OneFlow backend (needs oneflow and onediffx)"

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        return backend_available("oneflow", device, (
            f"install oneflow and onediffx as OneDiff's README says, {ISOLATION_HINT}"))

    def validate(self, cfg: "RunConfig") -> list[str]:
        if cfg.compiler_config:
            return [f"ignored: compiler oneflow takes no compiler_config "
                    f"({', '.join(sorted(cfg.compiler_config))})"]
        return []

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        emit(LogMessage("info", "onediffx compile_pipe backend=oneflow"))
        return compile_pipe(pipe, "oneflow")

