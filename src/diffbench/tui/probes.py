"""What can run here: the dashboard's background checks of the environment.

A mixin of :class:`diffbench.tui.app.DiffbenchApp`. Each check runs in a thread worker after the first
paint (device, compiler and quantization availability, cached hub pipelines) or while the
user types (does the model resolve?), and feeds ``validate_form``; NVML readings are posted
once a second during a run on a GPU. Nothing here imports torch.
"""

from __future__ import annotations

import threading
from typing import Optional

from textual import work
from textual.widgets import Input
from textual.worker import get_current_worker

from diffbench.engine.config import COMPILERS, RunConfig
from diffbench.engine.errors import ConfigError
from diffbench.tui import messages as msg


class EnvironmentProbes:
    """Mixin: fills ``device``, ``all_backends``, ``quantize_modes``, ``model_problems`` and
    ``gpu_available`` on the app, and answers :meth:`_environment_problem`."""

    @work(thread=True, group="probe", exit_on_error=False)
    def _probe_worker(self) -> None:
        """Which device "auto" means and which compilers can run there (no torch import)."""
        from diffbench.tui import checks
        from diffbench.tui.gpu import GpuSampler

        device = checks.resolve_device("auto")
        backends = {d: checks.backend_availability(d) for d in ("cpu", "cuda")}
        quantize = {d: checks.quantize_availability(d) for d in ("cpu", "cuda")}
        cached = checks.cached_hub_models()
        if cached:
            self.call_from_thread(self._add_model_suggestions, cached)
        sampler = GpuSampler()
        gpu = sampler.available
        sampler.close()
        self.call_from_thread(self._apply_probe, device, backends, quantize, gpu)

    def _add_model_suggestions(self, hub_ids: list[str]) -> None:
        from textual.suggester import SuggestFromList

        from diffbench.tui.widgets.settings import BUILTIN_MODELS

        self.query_one("#model", Input).suggester = SuggestFromList(
            list(BUILTIN_MODELS) + hub_ids)

    def _apply_probe(self, device: str, backends: dict, quantize: dict, gpu: bool) -> None:
        self.device, self.all_backends, self.gpu_available = device, backends, gpu
        self.quantize_modes = quantize
        self._label_compilers()
        self._validated = False  # force a redraw of the verdict
        self.validate_form()

    def _label_compilers(self) -> None:
        """Mark compilers that cannot run on the chosen device in the compiler list."""
        from textual.widgets import Select

        select = self.query_one("#compiler", Select)
        device = self._form_device()
        availability = self.all_backends.get(device.split(":")[0], {})
        value = select.value
        options = []
        for name in COMPILERS:
            ok, _ = availability.get(name, (True, ""))
            options.append((name if ok else f"{name} (n/a on {device})", name))
        with self.prevent(Select.Changed):
            select.set_options(options)
            select.value = value
        self.backends = availability
        self._labeled_device = device

    def _form_device(self) -> str:
        try:
            requested = self.form().values().get("device", "auto")
        except ConfigError:
            requested = "auto"
        return self.device or "cpu" if requested == "auto" else requested

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def _check_model_worker(self, name: str) -> None:
        import time as _time

        from diffbench.tui import checks

        _time.sleep(0.25)  # debounce: wait for the user to stop typing
        if get_current_worker().is_cancelled:
            return
        problem = checks.model_problem(name)
        self.call_from_thread(self._apply_model_check, name, problem)

    def _apply_model_check(self, name: str, problem: Optional[str]) -> None:
        self.model_problems[name] = problem
        self._validated = False
        self.validate_form()
        if getattr(self._history, "persistent", False) is False:
            self.log_line("info", "history: kept in memory until you quit (no run store available)")


    def _environment_problem(self, cfg: RunConfig) -> Optional[ConfigError]:
        """Why ``cfg`` cannot run here though it is valid (unknown model, compiler n/a), as a
        ConfigError whose ``.field`` is the setting to change; None when it can run."""
        if cfg.model not in self.model_problems:
            if self.first_painted:  # before it, optimistic; _after_first_paint asks again
                self.model_problems[cfg.model] = None  # optimistic until the check answers
                self._check_model_worker(cfg.model)
        elif self.model_problems[cfg.model]:
            return ConfigError(self.model_problems[cfg.model], field="model")
        if self.device is not None:
            device = self.device if cfg.device == "auto" else cfg.device
            ok, reason = self.all_backends.get(device.split(":")[0], {}).get(
                cfg.compiler, (True, ""))
            if not ok:
                return ConfigError(f"compiler {cfg.compiler} cannot run here: {reason}",
                                   field="compiler")
            ok, reason = self.quantize_modes.get(device.split(":")[0], {}).get(
                cfg.quantize, (True, ""))
            if not ok:
                return ConfigError(f"quantize {cfg.quantize} cannot run here: {reason}",
                                   field="quantize")
        return None

    @work(thread=True, group="gpu", exit_on_error=False)
    def _gpu_worker(self, token: int, cancel: threading.Event) -> None:
        """Post an NVML reading every second while run ``token`` is live."""
        import time as _time

        from diffbench.tui.gpu import GpuSampler

        sampler = GpuSampler()
        try:
            while self.run_token == token and not cancel.is_set():
                sample = sampler.sample()
                if sample is not None:
                    self.post_message(msg.GpuUpdate(token, sample))
                _time.sleep(1.0)
        finally:
            sampler.close()

