"""The `diffbench` command line: :mod:`diffbench.cli.main` dispatches to one module per
subcommand (run, sweep, throughput, check-params, history, export, compare, doctor, serve)."""
