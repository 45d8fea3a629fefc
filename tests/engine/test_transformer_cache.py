"""Step caching of diffusion transformers through diffusers' cache hooks (``--cache``), on tiny
FLUX and SD3 pipelines on the CPU: every method applies or refuses with one line, the steps it
reports as computed are the steps whose blocks ran, and a call's counts reach the live step
events and the record."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import dit_models as dm  # noqa: E402

from diffbench.engine import accelerators, families  # noqa: E402
from diffbench.engine.accelerators import step_cache  # noqa: E402
from diffbench.engine.config import RunConfig  # noqa: E402
from diffbench.engine.errors import AcceleratorUnavailableError, ConfigError  # noqa: E402

STEPS = 8


def cfg(**kw):
    kw.setdefault("model", "tiny-sd15")
    kw.setdefault("steps", STEPS)
    return RunConfig(**kw)


def cached(build, spec, **settings):
    pipe = build()
    pipe.set_progress_bar_config(disable=True)
    state = accelerators.AcceleratorState()
    events = []
    accelerators.apply_all(pipe, spec, cfg(**settings), events.append, state)
    return pipe, state, events


@pytest.fixture(scope="module")
def flux_reference():
    pipe = dm.flux_pipe()
    pipe.set_progress_bar_config(disable=True)
    return pipe(**dm.call_kwargs(pipe, STEPS)).images


def count_calls(module) -> list:
    """A list that grows by one each time ``module`` runs."""
    calls = []
    module.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls


# The module that runs only on computed steps: the last single-stream block's output
# projection (First Block Cache skips every block after the first), the first block's
# query projection (MagCache skips every block; TaylorSeer predicts the attention outputs).
PROBES = {"first-block": lambda t: t.single_transformer_blocks[-1].proj_out,
          "magcache": lambda t: t.transformer_blocks[0].attn.to_q,
          "taylorseer": lambda t: t.transformer_blocks[0].attn.to_q}


@pytest.mark.parametrize("cache,threshold", [("first-block", 0.2), ("first-block", 1.0),
                                             ("magcache", None), ("taylorseer", None)])
def test_counted_caches_skip_steps_and_count_the_blocks_that_ran(cache, threshold,
                                                                 flux_reference):
    pipe, state, events = cached(dm.flux_pipe, dm.FLUX_SPEC, cache=cache,
                                 cache_threshold=threshold)
    ran = count_calls(PROBES[cache](pipe.transformer))
    first = pipe(**dm.call_kwargs(pipe, STEPS)).images
    stats = state.cache_stats
    computed, skipped = stats.computed(), stats.skipped()
    assert computed + skipped == STEPS and skipped >= 1 and computed >= 1
    assert len(ran) == computed  # the count is what ran, not what was configured
    # lossy but close to eager, and a second call starts afresh: the same latents and counts
    error = (first - flux_reference).abs().max().item()
    assert 0 < error < 0.5 and torch.isfinite(first).all()
    again = pipe(**dm.call_kwargs(pipe, STEPS)).images
    assert torch.equal(first, again) and (stats.computed(), stats.skipped()) == (computed,
                                                                                  skipped)
    assert any(f"step cache {cache}" in getattr(e, "text", "") for e in events)


def test_first_block_threshold_sets_how_many_steps_are_skipped():
    counts = {}
    for threshold in (0.001, 0.2, 1.0):
        pipe, state, _ = cached(dm.flux_pipe, dm.FLUX_SPEC, cache="first-block",
                                cache_threshold=threshold)
        pipe(**dm.call_kwargs(pipe, STEPS))
        counts[threshold] = state.cache_stats.skipped()
    assert counts[0.001] == 0 and counts[0.001] < counts[0.2] < counts[1.0] == STEPS - 1


@pytest.mark.parametrize("cache", ["pab", "fastercache"])
def test_attention_caches_apply_and_give_no_step_count(cache, flux_reference):
    pipe, state, events = cached(dm.flux_pipe, dm.FLUX_SPEC, cache=cache)
    out = pipe(**dm.call_kwargs(pipe, STEPS)).images
    assert 0 < (out - flux_reference).abs().max().item() < 0.5
    assert state.cache_stats.computed() is None and state.cache_stats.skipped() is None
    assert any("n/a" in getattr(e, "text", "") for e in events)


def test_sd3_without_cache_context_runs_taylorseer_and_pab_and_resets_between_calls():
    reference = dm.sd3_pipe()
    reference.set_progress_bar_config(disable=True)
    eager = reference(**dm.call_kwargs(reference, STEPS)).images
    for cache in ("taylorseer", "pab"):
        pipe, state, _ = cached(dm.sd3_pipe, dm.SD3_SPEC, cache=cache)
        a = pipe(**dm.call_kwargs(pipe, STEPS)).images
        b = pipe(**dm.call_kwargs(pipe, STEPS)).images
        # SD3's transformer is no CacheMixin: without the probe's reset the second call
        # would continue the first call's Taylor factors
        assert torch.equal(a, b) and 0 < (a - eager).abs().max().item() < 0.5
    assert state.cache_stats.calls == 2


@pytest.mark.parametrize("cache,words", [("first-block", "last block returns no text states"),
                                         ("magcache", "magnitude ratios"),
                                         ("fastercache", "CFG batch")])
def test_sd3_refuses_what_diffusers_hooks_cannot_run_with_one_line(cache, words):
    with pytest.raises(AcceleratorUnavailableError, match=words) as info:
        cached(dm.sd3_pipe, dm.SD3_SPEC, cache=cache)
    assert "\n" not in str(info.value)


def test_a_unet_is_refused_before_loading_and_by_the_hooks():
    with pytest.raises(ConfigError, match="UNet: use --deepcache"):
        accelerators.check_family(cfg(cache="first-block"), families.get("sd15"))
    with pytest.raises(ConfigError, match="--deepcache needs a UNet"):
        accelerators.check_family(cfg(deepcache=True), dm.FLUX_SPEC)
    accelerators.check_family(cfg(cache="pab"), dm.FLUX_SPEC)  # no error


@pytest.mark.parametrize("settings,words", [
    (dict(compiler="cudagraph"), "CUDA graph replay"),
    (dict(deepcache=True), "choose one step cache"),
    (dict(compiler="compile", compiler_config={"fullgraph": True}), "fullgraph"),
])
def test_cache_with_what_cannot_hold_it_is_refused(settings, words):
    with pytest.raises(ConfigError, match=words):
        accelerators.validate_all(cfg(cache="first-block", **settings))


def test_settings_without_effect_get_notices():
    notices = accelerators.validate_all(cfg(cache="taylorseer", cache_threshold=0.1))
    assert any("cache_threshold has no effect" in n for n in notices)
    notices = accelerators.validate_all(cfg(cache="first-block", cache_interval=5))
    assert any("cache_interval has no effect" in n for n in notices)


@pytest.mark.parametrize("value", [0, -0.1, 1.5, float("nan")])
def test_threshold_out_of_range_is_one_line(value):
    with pytest.raises(ConfigError, match="cache threshold .* out of range") as info:
        cfg(cache="first-block", cache_threshold=value)
    assert info.value.field == "cache_threshold" and "\n" not in str(info.value)


def test_threshold_out_of_range_cli_exit_2_before_loading(capsys, monkeypatch):
    from diffbench.cli.main import main
    from diffbench.engine import models

    monkeypatch.setattr(models, "load_pipeline", lambda *a, **k: pytest.fail("loaded a model"))
    code = main(["run", "--model", "tiny-sd15", "--cache", "first-block",
                 "--cache-threshold", "3", "--in-process"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "out of range" in err[0]


def test_every_cache_is_known_to_the_installed_diffusers():
    for name in step_cache.BACKENDS:
        assert step_cache.available(name) == (True, ""), name
    ok, reason = accelerators.get("cache").available_for(cfg(cache="pab"), "cpu")
    assert ok and not reason


def test_live_step_events_and_the_record_carry_the_counts():
    """The runner's warmup + measured call on a cached FLUX pipeline: each StepFinished
    carries the skipped steps so far, the record the measured call's totals."""
    from diffbench.engine import events as ev
    from diffbench.engine.prepare import Prepared
    from diffbench.engine.result import Metrics
    from diffbench.engine.timed_calls import warmup_and_measure

    run = cfg(cache="first-block", cache_threshold=0.2, warmups=1, height=dm.SIZE,
              width=dm.SIZE, prompt="a cat")
    pipe, state, _ = cached(dm.flux_pipe, dm.FLUX_SPEC, cache="first-block",
                            cache_threshold=0.2)
    prepared = Prepared(pipe, "cpu", torch.float32, dm.SIZE, dm.SIZE, None, [], 0.0, 0.0,
                        spec=dm.FLUX_SPEC, state=state)
    events, metrics = [], Metrics()
    warmup_and_measure(run, prepared, events.append, None, metrics, ["warmup"])
    measured = [e for e in events if isinstance(e, ev.StepFinished) and e.call == "measured"]
    skipped = [e.steps_skipped for e in measured]
    assert len(measured) == STEPS and skipped == sorted(skipped) and skipped[0] == 0
    assert (metrics.steps_computed, metrics.steps_skipped) == (STEPS - skipped[-1], skipped[-1])
    assert metrics.steps_skipped >= 1 and metrics.steps_run == STEPS
    # the event schema stays additive: old fields first, the new one round-trips
    assert ev.event_from_dict(ev.to_dict(measured[-1])) == measured[-1]
    assert ev.event_from_dict({"type": "StepFinished", "call": "measured", "index": 1,
                               "total": 2, "step_ms": 1.0}).steps_skipped is None


@pytest.mark.parametrize("cache,skipped,label,summary", [
    ("first-block", 3, "computed 2 / skipped 3", "5 / 3"),
    ("pab", None, "skipped n/a", "n/a (pab gives no step count)"),
])
def test_cli_progress_line_and_summary_show_the_counts(cache, skipped, label, summary):
    import io

    from rich.console import Console

    from diffbench.cli._run_view import RunView, summary_table
    from diffbench.engine import events as ev
    from diffbench.engine.result import RunResult

    run = cfg(cache=cache)
    quiet = Console(file=io.StringIO())
    view = RunView(run, console=quiet, out=quiet)
    view.on_event(ev.PhaseStarted("measure"))
    view.on_event(ev.StepFinished("measured", 5, STEPS, 10.0, steps_skipped=skipped))
    assert label in view.progress.tasks[-1].description
    result = RunResult(config=run.to_dict())
    result.metrics.steps_run = STEPS
    if skipped is not None:
        result.metrics.steps_computed, result.metrics.steps_skipped = 5, 3
    rows = dict(zip(*[[str(c) for c in col._cells] for col in summary_table(result).columns]))
    assert rows["Steps computed / skipped (step cache)"] == summary
