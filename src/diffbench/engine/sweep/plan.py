"""A sweep's plan: :class:`Sweep` (base config + grid) expands to cells, each cell's
RunConfig and its baseline cell; :func:`prepare` checks every cell before anything runs."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import AcceleratorUnavailableError, ConfigError, DiffbenchError
from diffbench.engine.sweep.grid import SIZE_KEY, cell_key, format_value, normalise_grid


@dataclass
class Sweep:
    """A base config and a grid. ``baseline`` is a partial cell naming the reference each cell
    is compared with (default: ``{"compiler": "none"}`` when the grid sweeps compilers over
    "none", else the first value of the first grid field)."""

    base: RunConfig
    grid: dict[str, list]
    sweep_id: str = ""
    baseline: dict = field(default_factory=dict)
    #: Folder for the cells' images when the base config names no output image (run_sweep
    #: sets it next to the history: <history folder>/images/<sweep id>/), so every cell has a
    #: PNG to compare with its baseline.
    image_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.grid:
            raise ConfigError("a sweep needs at least one --grid FIELD=V1,V2")
        self.grid = normalise_grid(self.grid)
        if not self.sweep_id:
            self.sweep_id = default_sweep_id(self.base, self.grid)
        if not self.baseline:
            self.baseline = default_baseline(self.grid)
        for name, value in self.baseline.items():
            if name not in self.grid or value not in self.grid[name]:
                raise ConfigError(f"baseline {name}={format_value(value)} is not in the grid")

    def cells(self) -> list[dict]:
        """Every cell as an ordered dict {field: value}, first grid field slowest."""
        names = list(self.grid)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.grid.values())]

    def config_for(self, cell: dict) -> RunConfig:
        """The RunConfig of one cell (validated).

        Raises:
            ConfigError: the combination is invalid; the message names the cell.
        """
        changes = {}
        for name, value in cell.items():
            if name == SIZE_KEY:
                width, height = (int(p) for p in value.split("x"))
                changes.update(width=width, height=height)
            else:
                changes[name] = value
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cell_key(cell))
        if self.base.output_image:  # one image per cell, never overwritten by the next
            stem, ext = os.path.splitext(self.base.output_image)
            changes["output_image"] = f"{stem}-{safe}{ext or '.png'}"
        elif self.image_dir:
            os.makedirs(self.image_dir, exist_ok=True)
            changes["output_image"] = os.path.join(self.image_dir, f"{safe}.png")
        try:
            return self.base.replace(**changes)
        except ConfigError as exc:
            raise ConfigError(f"cell {cell_key(cell)}: {exc}") from None

    def baseline_cell(self, cell: dict) -> dict:
        """The reference cell of ``cell``: the same cell with the baseline values put in."""
        ref = dict(cell)
        ref.update(self.baseline)
        return ref


def default_baseline(grid: dict[str, list]) -> dict:
    """{"compiler": "none"} when the grid sweeps compilers including none, else the first
    value of the first grid field."""
    if "none" in grid.get("compiler", []):
        return {"compiler": "none"}
    first = next(iter(grid))
    return {first: grid[first][0]}


def default_sweep_id(base: RunConfig, grid: dict[str, list]) -> str:
    """A stable id from the base config and grid, so rerunning the same sweep resumes it."""
    payload = json.dumps({"base": base.to_dict(), "grid": grid}, sort_keys=True, default=str)
    return "sweep-" + hashlib.sha1(payload.encode()).hexdigest()[:10]


def prepare(sweep: Sweep, preflight: Optional[Callable[[RunConfig], Any]] = None
            ) -> list[tuple[dict, RunConfig, Optional[str]]]:
    """Validate every cell before anything runs.

    Returns:
        [(cell, config, unavailable_reason)] — the reason is set when the cell's accelerator
        cannot run here (that cell is recorded as failed; the others still run).

    Raises:
        ConfigError / ModelNotFoundError: bad input in any cell, naming the cell.
    """
    prepared = []
    for cell in sweep.cells():
        cfg = sweep.config_for(cell)
        reason = None
        if preflight is not None:
            try:
                preflight(cfg)
            except AcceleratorUnavailableError as exc:
                reason = str(exc)
            except DiffbenchError as exc:
                raise type(exc)(f"cell {cell_key(cell)}: {exc}") from None
        prepared.append((cell, cfg, reason))
    return prepared
