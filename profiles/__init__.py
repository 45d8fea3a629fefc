"""Run presets shipped with diffbench: one TOML file per profile (see engine.profiles)."""
