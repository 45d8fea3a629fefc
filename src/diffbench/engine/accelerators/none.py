"""The eager baseline: no compiler, the pipeline as diffusers builds it."""

from diffbench.engine.accelerators.base import Accelerator
from diffbench.engine.accelerators.options import is_nexfort_mode


class Eager(Accelerator):
    """``--compiler none``: the baseline every speed-up is measured against.

    It takes no compiler_config; keys given anyway (e.g. the seed's nexfort config with
    ``--compiler none``) are ignored with one notice each, never an error.
    """

    name = "none"
    description = "eager PyTorch (baseline)"

    def validate(self, cfg):
        notices = []
        for key, value in cfg.compiler_config.items():
            if key == "mode" and isinstance(value, str) and is_nexfort_mode(value):
                notices.append(f"ignored: nexfort-only mode {value!r} (compiler none runs "
                               f"eager PyTorch)")
            else:
                notices.append(f"ignored: compiler_config key {key!r} (compiler none runs "
                               f"eager PyTorch)")
        return notices

