"""Optional dependencies: which feature needs which package, and the one-line hint naming the
pip extra that installs it (pyproject.toml's ``[project.optional-dependencies]``).

Each package is imported only where its feature runs, so a missing one costs nothing until that
feature is asked for, and then fails with one line such as
``LoRA needs peft: pip install 'diffbench[lora]'``.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from types import ModuleType

from diffbench.engine.errors import ConfigError, DiffbenchError


@dataclass(frozen=True)
class Extra:
    """An optional package.

    Attributes:
        module: the import name ("skimage").
        package: the distribution pip installs ("scikit-image").
        extra: the diffbench extra that pulls it in ("quality").
        needs: the hint's subject and verb ("PSNR/SSIM need").
        note: said after the install command ("" for none).
    """

    module: str
    package: str
    extra: str
    needs: str
    note: str = ""

    def command(self) -> str:
        """The install command, e.g. "pip install 'diffbench[lora]'" (then ", " and the
        note)."""
        line = f"pip install 'diffbench[{self.extra}]'"
        return f"{line}, {self.note}" if self.note else line

    def hint(self) -> str:
        """One line: what needs the package and the pip command that installs it."""
        return f"{self.needs} {self.package}: {self.command()}"


#: Import name -> Extra. The extras' version floors live in pyproject.toml.
EXTRAS = {
    "peft": Extra("peft", "peft", "lora", "LoRA needs"),
    "skimage": Extra("skimage", "scikit-image", "quality", "PSNR/SSIM need"),
    "torchao": Extra("torchao", "torchao", "quantize", "quantization needs",
                     "or a torchao release built for your torch"),
}


def hint(module: str) -> str:
    """The one-line install hint for optional package ``module`` (an :data:`EXTRAS` key).

    Raises:
        KeyError: ``module`` is not an optional dependency.
    """
    return EXTRAS[module].hint()


def missing(module: str) -> bool:
    """True when ``module`` cannot be imported; looks for it without importing it (cheap).
    A ``None`` entry in ``sys.modules`` (how tests hide a package) counts as missing."""
    if module in sys.modules:
        return sys.modules[module] is None
    import importlib.util

    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a broken parent package or a bad __spec__
        return True


def require(module: str, error: "type[DiffbenchError]" = ConfigError) -> ModuleType:
    """Import optional package ``module`` and return it.

    Raises:
        ``error`` (default ConfigError, CLI exit 2): the package is not installed; the message
            is :func:`hint`'s one line. An installed package that fails on import raises its
            own ImportError, which names the real cause.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name == module or missing(module):
            raise error(hint(module)) from None
        raise
