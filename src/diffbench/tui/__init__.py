"""diffbench dashboard (Textual). Must open without importing torch: the engine's heavy
modules are imported inside worker threads only."""
