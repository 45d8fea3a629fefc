"""diffbench engine: the headless core (never imports textual).

Data flow: profile TOML + overrides -> :class:`engine.config.RunConfig` (validated) ->
:func:`engine.runner.run` (load pipeline, apply accelerators, warmups, measured call) ->
:class:`engine.result.RunResult` -> history / TUI / CLI / TOML export.

Importing this package is cheap: torch and diffusers are imported only by the modules that
need them (models, accelerators, runner, measure).
"""

__version__ = "0.1.0"
