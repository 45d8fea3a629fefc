"""diffbench: measure and accelerate diffusers inference.

Sub-packages: ``diffbench.engine`` (the headless core; imports neither the CLI nor textual),
``diffbench.cli`` (the `diffbench` command), ``diffbench.tui`` (the Textual dashboard) and
``diffbench.profiles`` (TOML presets shipped with the package).
"""

__version__ = "0.1.0"
