"""diffbench engine: the headless core (never imports textual).

Data flow: profile TOML + overrides -> :class:`diffbench.engine.config.RunConfig` (validated) ->
:func:`diffbench.engine.runner.run` (load pipeline, apply accelerators, warmups, measured call) ->
:class:`diffbench.engine.result.RunResult` -> history / TUI / CLI / TOML export.

Importing this package is cheap: torch and diffusers are imported only by the modules that
need them (models, accelerators, runner, measure).
"""

from diffbench import __version__  # noqa: F401  (one version for the distribution)
