"""The dashboard's doors into the engine, one module per job.

- :mod:`.events` — engine events -> dashboard messages (EventTranslator).
- :mod:`.running` — a run from the form, through diffbench.engine.session.Session (which
  decides child process or in process, attaches the baseline and records the run).
- :mod:`.store` — history, TOML export, profiles (engine.profiles' cheap functions).
- :mod:`.analysis` — sweeps, the throughput fit, image similarity.

Nothing here imports torch at import time: the heavy engine modules load inside the calls,
which the app makes from thread workers. Callers import the module of the job they need.
"""
