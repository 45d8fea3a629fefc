"""The eager baseline: no compiler, the pipeline as diffusers builds it."""

from engine.accelerators import Accelerator, register


class Eager(Accelerator):
    """``--compiler none``: the baseline every speed-up is measured against."""

    name = "none"
    description = "eager PyTorch (baseline)"


register(Eager())
