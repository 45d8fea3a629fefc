"""Accelerators that run on the CPU, on a tiny real UNet: torch.compile (regional, through
inductor), step caching, and the compile-progress watcher."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from diffbench.engine import accelerators, families  # noqa: E402
from diffbench.engine.accelerators import deepcache  # noqa: E402
from diffbench.engine.compile_progress import CompileWatcher  # noqa: E402
from diffbench.engine.config import RunConfig  # noqa: E402
from diffbench.engine.errors import ConfigError  # noqa: E402
from diffbench.engine.events import CompileProgress, LogMessage  # noqa: E402

SD15 = families.get("sd15")


def tiny_unet():
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=4, cross_attention_dim=8,
        attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    return unet.eval().requires_grad_(False)


class TinyPipe:
    """The parts of a diffusers pipeline the accelerators touch, driven step by step."""

    def __init__(self):
        self.unet = tiny_unet()
        self.scheduler = diffusers.EulerDiscreteScheduler()
        self.vae = None

    def __call__(self, steps=4, seed=0):
        gen = torch.Generator().manual_seed(seed)
        latents = torch.randn(1, 4, 8, 8, generator=gen)
        text = torch.randn(1, 3, 8, generator=gen)
        self.scheduler.set_timesteps(steps)
        outs = []
        for t in self.scheduler.timesteps:
            noise = self.unet(latents, t, encoder_hidden_states=text, return_dict=False)[0]
            outs.append(noise)
            latents = self.scheduler.step(noise, t, latents, return_dict=False)[0]
        return outs


def test_deepcache_skips_deep_blocks_between_full_steps():
    reference = TinyPipe()(steps=6)
    pipe = TinyPipe()
    events = []
    cache = deepcache.apply(pipe, SD15, RunConfig(model="tiny-sd15", deepcache=True,
                                            cache_interval=3), events.append)
    outs = pipe(steps=6)
    assert (cache.full_steps, cache.cached_steps) == (2, 4)
    # Full steps (0 and 3) see the same inputs on step 0 only; step 0 is exact.
    torch.testing.assert_close(outs[0], reference[0])
    # Cached steps reuse stale deep features: close to, but not equal to, the full UNet.
    assert not torch.equal(outs[1], reference[1])
    assert isinstance(events[0], LogMessage) and "DeepCache" in events[0].text
    # A second call starts again with a full step.
    pipe(steps=6)
    assert (cache.full_steps, cache.cached_steps) == (4, 8)


def test_deepcache_interval_one_is_exact_and_layer_range_checked():
    reference = TinyPipe()(steps=3)
    pipe = TinyPipe()
    deepcache.apply(pipe, SD15, RunConfig(model="tiny-sd15", deepcache=True, cache_interval=1),
                    lambda e: None)
    for got, want in zip(pipe(steps=3), reference):
        torch.testing.assert_close(got, want)
    with pytest.raises(ConfigError, match="cache_layer_id must be between 0 and 1"):
        deepcache.apply(TinyPipe(), SD15, RunConfig(model="tiny-sd15", deepcache=True,
                                              cache_layer_id=5), lambda e: None)
    with pytest.raises(ConfigError, match="cache_block_id"):
        deepcache.validate(RunConfig(model="tiny-sd15", deepcache=True, cache_block_id=1))


def test_deepcache_keeps_scheduler_signature():
    """Pipelines inspect scheduler.step for eta/generator: the hook must not hide them."""
    import inspect

    pipe = TinyPipe()
    pipe.scheduler = diffusers.EulerAncestralDiscreteScheduler()
    deepcache.apply(pipe, SD15, RunConfig(model="tiny-sd15", deepcache=True), lambda e: None)
    assert "generator" in inspect.signature(pipe.scheduler.step).parameters


@pytest.mark.parametrize("blocks", [None, ["BasicTransformerBlock", "ResnetBlock2D"]])
def test_regional_compile_on_cpu_matches_eager_and_reports_progress(tmp_path, monkeypatch,
                                                                     blocks):
    """A real torch.compile (Dynamo tracing + AOTAutograd; backend aot_eager keeps CI fast,
    inductor's C++ codegen takes about a minute here) of the repeated transformer blocks,
    and with ``regional_blocks`` of the ResNet blocks too (one compile per distinct shape)."""
    ok, reason = accelerators.get("compile").available("cpu")
    if not ok:
        pytest.skip(reason)
    monkeypatch.setenv("DIFFBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    torch._dynamo.reset()
    reference = TinyPipe()(steps=2)
    pipe = TinyPipe()
    events = []
    config = {"regional": True, "compile_vae": False, "backend": "aot_eager"}
    if blocks:
        config["regional_blocks"] = blocks
    cfg = RunConfig(model="tiny-sd15", compiler="compile", compiler_config=config)
    watcher = CompileWatcher(events.append, poll_s=0.05).start()
    accelerators.apply_all(pipe, SD15, cfg, events.append)
    compiled = {type(m).__name__ for m in pipe.unet.modules()
                if getattr(m, "_compiled_call_impl", None) is not None}
    assert compiled == set(blocks or ["BasicTransformerBlock"])
    outs = pipe(steps=2)
    counts = watcher.stop()
    assert counts.frames >= 1 and counts.graphs >= 1
    progress = [e for e in events if isinstance(e, CompileProgress)]
    assert progress and progress[-1].graphs >= 1 and "compiled" in progress[-1].message
    for got, want in zip(outs, reference):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    mark = watcher.mark()
    pipe(steps=2)
    assert watcher.recompiles_since(mark) == 0


def test_cudagraph_compiles_the_regional_blocks_it_is_given():
    """--compiler cudagraph with regional_blocks compiles those classes before the graph
    wraps the UNet (nothing is captured until the first call, so this runs on the CPU)."""
    from diffbench.engine.accelerators.cudagraph import GraphedForward

    pipe = TinyPipe()
    cfg = RunConfig(model="tiny-sd15", compiler="cudagraph", compiler_config={
        "regional_blocks": ["BasicTransformerBlock", "ResnetBlock2D"], "backend": "eager"})
    limit = torch._dynamo.config.recompile_limit
    with torch._dynamo.config.patch(recompile_limit=limit):  # the raised cap stays in here
        accelerators.get("cudagraph").apply(pipe, SD15, cfg, lambda e: None)
    compiled = {type(m).__name__ for m in pipe.unet.modules()
                if getattr(m, "_compiled_call_impl", None) is not None}
    assert compiled == {"BasicTransformerBlock", "ResnetBlock2D"}
    assert isinstance(pipe.unet.__dict__.get("forward"), GraphedForward)


@pytest.mark.parametrize("name", ["compile", "cudagraph"])
def test_compilers_share_the_apply_preamble(name, monkeypatch):
    """Both compilers start apply() the same way (begin_apply): a state is made when none is
    passed, channels_last reaches the UNet, and modules are prepared once per pipeline even
    when prepare() already did it."""
    from diffbench.engine.accelerators import compile as compile_mod
    from diffbench.engine.accelerators.base import AcceleratorState

    calls = []
    real = compile_mod.prepare_modules
    monkeypatch.setattr(compile_mod, "prepare_modules",
                        lambda *a: calls.append(a[-1].modules_prepared) or real(*a))
    cfg = RunConfig(model="tiny-sd15", compiler=name,
                    compiler_config={"memory_format": "channels_last", "backend": "eager"})
    plugin = accelerators.get(name)
    pipe = TinyPipe()
    plugin.apply(pipe, SD15, cfg, lambda e: None)  # no state given
    conv = pipe.unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and conv.ndim == 4
    pipe, state = TinyPipe(), AcceleratorState()
    # what prepare() does after its compile-cache step (which would set process env vars)
    compile_mod.prepare_modules(pipe, SD15, plugin.options(cfg)[0], lambda e: None, state)
    plugin.apply(pipe, SD15, cfg, lambda e: None, state)
    assert calls == [False, False, True] and state.modules_prepared
    assert len(state.graphs) == (1 if name == "cudagraph" else 0)


def test_watcher_heartbeat_only_while_something_compiles(monkeypatch):
    """A compile with no counter movement for a while still emits progress (a 2-minute
    compile must not look like a hang), but a run that compiles nothing stays silent."""
    import time

    from diffbench.engine import compile_progress
    from diffbench.engine.compile_progress import CompileCounts

    monkeypatch.setattr(compile_progress, "HEARTBEAT_S", 0.05)
    state = {"counts": CompileCounts()}
    monkeypatch.setattr(compile_progress, "read_counts", lambda: state["counts"])
    events = []
    watcher = CompileWatcher(events.append, poll_s=0.01).start()
    time.sleep(0.2)
    assert events == []  # nothing traced: no heartbeat
    state["counts"] = CompileCounts(frames=1)
    time.sleep(0.3)
    watcher.stop()
    assert len(events) >= 3 and "Dynamo tracing" in events[1].message
    assert events[-1].frames == 1 and events[-1].elapsed_s >= 0.2


def test_deepcache_under_cuda_graphs_keys_the_phase_and_keeps_graph_buffers():
    """With --compiler cudagraph the full and the cached step are different graphs (the phase
    is in the key), and a new call keeps the cached outputs: they are the full graph's static
    buffers, which Python never re-assigns while graphs replay."""
    from diffbench.engine.accelerators.cudagraph import GraphedForward

    pipe = TinyPipe()
    cache = deepcache.apply(pipe, SD15, RunConfig(model="tiny-sd15", deepcache=True,
                                            cache_interval=2), lambda e: None)
    graphed = GraphedForward(pipe.unet.forward, lambda e: None, cache)
    sample, text = torch.zeros(1, 4, 8, 8), torch.zeros(1, 3, 8)
    full_key = graphed.key((sample, 1.0), {"encoder_hidden_states": text})
    cache.skipping = True
    cached_key = graphed.key((sample, 2.0), {"encoder_hidden_states": text})
    assert full_key[0] == "full" and cached_key[0] == "cached"
    assert full_key[1:] == cached_key[1:]  # same shapes: only the phase tells them apart
    assert GraphedForward(pipe.unet.forward, lambda e: None).key(
        (sample, 1.0), {"encoder_hidden_states": text})[0] is None

    cache.skipping = False
    pipe(steps=4)
    held = dict(cache.outputs)
    assert held
    cache.reset()  # eager: a new call forgets the last call's features
    assert cache.outputs == {}
    cache.graph_held = True
    pipe(steps=4)
    kept = dict(cache.outputs)
    cache.reset()
    assert cache.outputs.keys() == kept.keys() and all(
        cache.outputs[i] is kept[i] for i in kept)
    assert cache.phase() == "full" and cache.step == 0


def test_cuda_graph_capture_of_a_cached_step_reads_the_features_of_its_own_inputs(monkeypatch):
    """Replays run no Python, so after the graphs of other inputs were captured the step
    cache holds their features; capturing the cached step of the first inputs must put that
    signature's own features back first (else it would read another size's buffers)."""
    from diffbench.engine.accelerators.cudagraph import GraphedForward, _Captured

    cache = deepcache.StepCache(interval=2)
    cache.graph_held = True
    read: list = []

    def forward(sample):
        if cache.skipping:
            read.append(cache.outputs[0])  # what a cached step's blocks would return
        else:
            cache.outputs[0] = ("features of", tuple(sample.shape))
        return sample

    graphed = GraphedForward(forward, lambda e: None, cache)
    # A graph "capture" on the CPU: run the Python once, as torch.cuda.graph does.
    monkeypatch.setattr(graphed, "_record",
                        lambda args, kwargs: (forward(*args, **kwargs),
                                              _Captured(None, args, kwargs, None))[1])
    small, large = torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 16, 16)
    graphed._capture(graphed.key((small,), {}), (small,), {})  # full step, small
    graphed._capture(graphed.key((large,), {}), (large,), {})  # full step, large
    cache.skipping = True
    graphed._capture(graphed.key((small,), {}), (small,), {})  # cached step, small
    assert read == [("features of", (2, 4, 8, 8))]
    assert graphed.captures == 3
    graphed.reset()
    assert graphed._states == {}
