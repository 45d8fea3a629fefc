"""Sweeps: a grid over RunConfig fields, each cell a normal run recorded in the history.

A sweep is a base :class:`~diffbench.engine.config.RunConfig` plus a grid
``{field: [values...]}``; the cells are the cartesian product in grid order (first key
slowest). Each cell is a full run — its own load, warmups (so every resolution is warmed
before it is measured) and measured call, its own seeded generator and its own recompile
count — unlike OneDiff's ``--run_multiple_resolutions``, which reused one warmed pipeline and
one generator.

Results are tagged in ``RunResult.config`` with ``sweep_id`` and ``sweep_cell`` (the cell key,
``"compiler=compile,height=256"``). Running the same sweep again resumes it: cells already
finished under that sweep id are skipped; failed or cancelled cells run again. A cell that
fails is recorded (status "failed", the reason in ``error``) and the sweep goes on.

The pseudo-field ``size`` sets height and width together: ``size=512`` or ``size=768x512``
(width x height).

One module per job:

- :mod:`.grid` — grid values from ``--grid`` text or a TOML sweep file, and the cell key.
- :mod:`.plan` — :class:`~.plan.Sweep`: the cells, each cell's RunConfig, its baseline cell,
  and the check of every cell before anything runs.
- :mod:`.cell` — one cell's run and outcome (a failure becomes a failed result).
- :mod:`.run` — :func:`~.run.run_sweep`: resume, record, baseline similarity.
- :mod:`.parallel` — cells dealt to several devices, retries on another device.
- :mod:`.report` — per-cell summary, table axes, the TOML summary file.
"""
