"""Run presets shipped with diffbench: one TOML file per profile (see diffbench.engine.profiles)."""
