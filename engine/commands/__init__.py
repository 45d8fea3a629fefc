"""Subcommands of the `diffbench` CLI, one module each (see engine.cli)."""
