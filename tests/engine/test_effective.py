"""What a call runs with and what the record says (engine/effective.py), peak memory per part
of the call (engine/phase_memory.py, with torch's CUDA counters stood in for on CPU), and the
memory options in the baseline rule."""

from __future__ import annotations

import pytest

from diffbench.engine import effective
from diffbench.engine.config import RunConfig

torch = pytest.importorskip("torch")


def _pipe(model: str):
    from diffbench.engine.models import load_pipeline

    return load_pipeline(RunConfig(model=model), "cpu", torch.float32)


def test_guidance_used_and_denoiser_rows_per_family():
    sd15 = _pipe("tiny-sd15")
    spec = effective.family_of(sd15)
    # a UNet family: the pipeline's own default (StableDiffusionPipeline: 7.5), CFG batch 2
    assert effective.guidance_used(RunConfig(), sd15, spec) == 7.5
    assert effective.denoiser_rows(RunConfig(batch=3), spec, 7.5) == 6
    assert effective.denoiser_rows(RunConfig(), spec, 1.0) == 1  # guidance 1: no CFG
    assert effective.call_settings(RunConfig(), sd15, spec, 64, 64) == {}  # unchanged calls
    assert effective.resolved_config(RunConfig(), sd15, spec) == {}
    flux = _pipe("tiny-flux")
    spec = effective.family_of(flux)
    assert effective.guidance_used(RunConfig(), flux, spec) == 3.5
    assert effective.denoiser_rows(RunConfig(batch=2), spec, 3.5) == 2  # guidance is an input
    true_cfg = RunConfig(negative_prompt="blur", extra_call_kwargs={"true_cfg_scale": 4.0})
    assert effective.denoiser_rows(true_cfg, spec, 3.5) == 2  # a second transformer call
    assert effective.call_settings(RunConfig(max_sequence_length=77), flux, spec, 64, 48) == {
        "max_sequence_length": 77, "guidance_scale": 3.5, "height": 64, "width": 48}


def test_schnell_like_model_uses_no_guidance_and_its_own_token_budget():
    flux = _pipe("tiny-flux")
    flux.transformer.register_to_config(guidance_embeds=False)  # what schnell's config says
    spec = effective.family_of(flux)
    assert effective.guidance_used(RunConfig(), flux, spec) is None
    settings = effective.call_settings(RunConfig(), flux, spec, 64, 64)
    assert settings["max_sequence_length"] == 256 and "guidance_scale" not in settings
    metrics = effective.effective_metrics(RunConfig(), flux, spec, 64, 64)
    assert metrics["guidance_used"] is None and metrics["denoiser_batch"] == 1


def test_kontext_edit_flops_count_the_input_image():
    pipe = _pipe("tiny-flux-kontext")
    spec = effective.family_of(pipe)
    edit = RunConfig(model="tiny-flux-kontext", input_image=__file__)
    assert edit.task == "pix2pix"
    t2i = effective.step_tflop(RunConfig(model="tiny-flux-kontext"), pipe, spec, 64, 64, 1)
    assert effective.step_tflop(edit, pipe, spec, 64, 64, 1) > t2i
    assert effective.call_settings(edit, pipe, spec, 64, 80)["max_area"] == 64 * 80
    assert effective.step_tflop(RunConfig(controlnet="random"), _pipe("tiny-sd15"),
                                effective.family_of(_pipe("tiny-sd15")), 64, 64, 2) is None


class _FakeCuda:
    """torch.cuda's peak counters, driven by the test: ``now`` is the allocation in GiB."""

    def __init__(self) -> None:
        self.now, self.peak, self.resets = 0.0, 0.0, 0

    def allocate(self, gib: float) -> None:
        self.now = gib
        self.peak = max(self.peak, gib)

    def max_memory_allocated(self, device=None) -> float:
        return self.peak * (1 << 30)

    def max_memory_reserved(self, device=None) -> float:
        return (self.peak + 0.5) * (1 << 30)

    def reset_peak_memory_stats(self, device=None) -> None:
        self.peak, self.resets = self.now, self.resets + 1


def test_phase_peaks_split_the_call_at_the_text_encoders_and_the_last_step(monkeypatch):
    from diffbench.engine.phase_memory import PhasePeaks

    fake = _FakeCuda()
    for name in ("max_memory_allocated", "max_memory_reserved", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    pipe = _pipe("tiny-flux")
    # each part allocates its own peak, then drops back to 0.25 GiB of weights
    for module, gib in ((pipe.text_encoder, 1.0), (pipe.text_encoder_2, 2.0),
                        (pipe.transformer, 5.0)):
        module.register_forward_pre_hook(lambda *_, gib=gib: fake.allocate(gib))
        module.register_forward_hook(lambda *_: fake.allocate(0.25))
    decode = pipe.vae.decode
    pipe.vae.decode = lambda *a, **k: (fake.allocate(3.0), decode(*a, **k))[1]
    steps = []
    phases = PhasePeaks(pipe, "cuda")
    hooks = len(pipe.text_encoder._forward_hooks)
    with phases:
        assert len(pipe.text_encoder._forward_hooks) == hooks + 1
        pipe("a cat", num_inference_steps=3, height=64, width=64,
             callback_on_step_end=phases.wrap(lambda p, i, t, kw: steps.append(i) or kw))
    assert steps == [0, 1, 2]
    assert phases.metrics() == {"text_encoder_peak_gib": 2.0, "denoiser_peak_gib": 5.0,
                                "vae_peak_gib": 3.0}
    assert phases.overall_gib() == (5.0, 5.5)  # what one reset before the call would read
    assert len(pipe.text_encoder._forward_hooks) == hooks  # removed after the call


def test_phase_peaks_do_nothing_on_cpu():
    from diffbench.engine.phase_memory import PhasePeaks

    phases = PhasePeaks(object(), "cpu")
    callback = object()
    with phases:
        assert phases.wrap(callback) is callback
    assert phases.overall_gib() == (None, None)
    assert set(phases.metrics().values()) == {None}


def test_memory_options_are_compared_with_the_plain_eager_run():
    from diffbench.engine.baseline import eager_config, is_eager

    assert is_eager({"compiler": "none"})  # an older record without the new keys
    assert not is_eager({"compiler": "none", "text_encoder_quant": "int8"})
    assert not is_eager({"compiler": "none", "cpu_offload": True})
    cfg = RunConfig(model="tiny-flux", text_encoder_quant="int8", cpu_offload=True)
    base = eager_config(cfg)
    assert (base.text_encoder_quant, base.cpu_offload) == ("none", False)
    assert is_eager(base.to_dict())


def test_steps_to_run_follow_each_pipelines_img2img_rule():
    from diffbench.engine import families

    flux, sdxl = families.get("flux"), families.get("sdxl")
    i2i = dict(task="i2i", input_image=__file__)
    # UNet pipelines: int(steps * strength); FLUX/SD3: steps - int(steps - steps * strength)
    assert effective.steps_to_run(RunConfig(steps=4, **i2i), sdxl) == 3
    assert effective.steps_to_run(RunConfig(steps=4, **i2i), flux) == 4
    assert effective.steps_to_run(RunConfig(steps=4, strength=0.75, **i2i), flux) == 3
    assert effective.steps_to_run(RunConfig(steps=28), flux) == 28


def test_live_progress_total_is_the_steps_the_call_runs(input_png):
    from diffbench.engine.runner import run

    events = []
    result = run(RunConfig(model="tiny-flux", steps=4, height=32, width=32, warmups=0,
                           input_image=input_png), on_event=events.append)
    totals = {e.total for e in events if type(e).__name__ == "StepFinished"}
    assert result.metrics.steps_run == 4 and totals == {4}  # not int(4 * 0.8) = 3
