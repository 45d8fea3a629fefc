"""The dashboard's only door into the engine: the names of diffbench.tui.bridge, in one place.

Split by job — events (engine events -> messages), running (a run through
diffbench.engine.session.Session), store (history, export, profiles), analysis (sweeps,
throughput, image similarity); see diffbench.tui.bridge. Nothing here imports torch.
"""

from __future__ import annotations

from diffbench.tui.bridge.analysis import (check_axes, compare_images, find_image_baseline,
                                           parse_steps, plan_sweep, run_sweep, run_throughput,
                                           throughput_plot)
from diffbench.tui.bridge.events import SPARK_POINTS, EventTranslator
from diffbench.tui.bridge.running import EngineFn, kill_child_runs, run_engine, session_for
from diffbench.tui.bridge.store import (default_export_path, export_toml, list_profiles,
                                        load_profile, open_history, read_profile_file,
                                        save_profile)

__all__ = ["EngineFn", "EventTranslator", "SPARK_POINTS", "check_axes", "compare_images",
           "default_export_path", "export_toml", "find_image_baseline", "kill_child_runs",
           "list_profiles", "load_profile", "open_history", "parse_steps", "plan_sweep",
           "read_profile_file", "run_engine", "run_sweep", "run_throughput", "save_profile",
           "session_for", "throughput_plot"]
