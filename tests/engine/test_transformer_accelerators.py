"""The lossless accelerators and quantization on diffusion transformers (tiny FLUX and SD3 on
the CPU): regional and full torch.compile through the family's spec, the attention backend,
fused QKV, torchao quantization of the transformer; each applies on the CPU with an output
close to eager, or refuses with one line before anything loads."""

from __future__ import annotations

import importlib.machinery
import sys
import types

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import dit_models as dm  # noqa: E402

from diffbench.engine import accelerators, families  # noqa: E402
from diffbench.engine.accelerators import attention, quantize, versions  # noqa: E402
from diffbench.engine.config import RunConfig  # noqa: E402
from diffbench.engine.errors import AcceleratorUnavailableError, ConfigError  # noqa: E402
from diffbench.engine.events import LogMessage  # noqa: E402


def cfg(**kw):
    kw.setdefault("model", "tiny-sd15")
    return RunConfig(**kw)


class Holder:
    """A pipeline stand-in holding a transformer (and an optional VAE) where the spec says."""

    def __init__(self, transformer, vae=None):
        self.transformer = transformer
        self.vae = vae


def step(spec, denoiser):
    args, kwargs = spec.example_inputs(denoiser, dm.SIZE, dm.SIZE, batch=1)
    with torch.no_grad():
        return denoiser(*args, return_dict=False, **kwargs)[0]


def applied(spec, transformer, **settings):
    holder, events = Holder(transformer), []
    state = accelerators.AcceleratorState()
    accelerators.apply_all(holder, spec, cfg(**settings), events.append, state)
    return holder, [e.text for e in events if isinstance(e, LogMessage)]


@pytest.fixture(autouse=True)
def keep_attention_backend():
    """The process-wide attention backend is diffusers' global: every test leaves it as found."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    before = _AttentionBackendRegistry._active_backend
    yield
    _AttentionBackendRegistry._active_backend = before


# --------------------------------------------------------------------------- compile
@pytest.mark.parametrize("spec,build,blocks", [
    (dm.FLUX_SPEC, dm.flux_transformer, 5),  # declared _repeated_blocks: 2 double + 3 single
    (dm.SD3_SPEC, dm.sd3_transformer, 3),    # none declared: the spec's JointTransformerBlock
])
def test_regional_compile_of_the_repeated_blocks(spec, build, blocks):
    reference = step(spec, build())
    holder, notes = applied(spec, build(), compiler="compile",
                            compiler_config={"regional": True, "backend": "aot_eager"})
    compiled = [m for m in holder.transformer.modules()
                if getattr(m, "_compiled_call_impl", None) is not None]
    assert len(compiled) == blocks
    assert {type(m).__name__ for m in compiled} <= set(spec.repeated_blocks)
    assert any(f"transformer ({blocks} repeated blocks)" in n for n in notes)
    torch.testing.assert_close(step(spec, holder.transformer), reference, atol=1e-5, rtol=1e-5)


def test_full_compile_keeps_the_transformer_object_and_its_output():
    transformer = dm.flux_transformer()
    reference = step(dm.FLUX_SPEC, transformer)
    holder, _ = applied(dm.FLUX_SPEC, transformer, compiler="compile",
                        compiler_config={"backend": "aot_eager", "fullgraph": True})
    assert holder.transformer is transformer and transformer._compiled_call_impl is not None
    torch.testing.assert_close(step(dm.FLUX_SPEC, transformer), reference, atol=1e-5,
                               rtol=1e-5)


def test_unet_only_options_on_a_transformer_say_so_in_one_line():
    _, notes = applied(dm.FLUX_SPEC, dm.flux_transformer(), compiler="compile",
                       compiler_config={"memory_format": "channels_last",
                                        "backend": "eager"})
    assert any("channels_last: the transformer has no 4-D weights" in n for n in notes)
    with pytest.raises(AcceleratorUnavailableError, match="has no ResnetBlock2D") as info:
        applied(dm.FLUX_SPEC, dm.flux_transformer(), compiler="compile",
                compiler_config={"regional_blocks": ["FluxTransformerBlock", "ResnetBlock2D"],
                                 "backend": "eager"})
    assert "\n" not in str(info.value)


def test_cudagraph_refuses_the_cpu_in_one_line():
    with pytest.raises(AcceleratorUnavailableError, match="need a CUDA GPU") as info:
        accelerators.check(cfg(compiler="cudagraph"), "cpu")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cache,config", [
    ("first-block", {"regional": True, "backend": "eager"}),
    ("taylorseer", {"backend": "aot_eager"}),  # the whole transformer compiled
])
def test_compile_under_a_step_cache_matches_the_eager_cache(cache, config):
    """Cache hooks sit inside the compiled code; Dynamo breaks the graph at the decision."""
    import torch._dynamo.config as dynamo_config

    outs, counts = [], []
    threshold = 0.2 if cache == "first-block" else None
    for compiler, compiler_config in (("none", {}), ("compile", config)):
        pipe = dm.flux_pipe()
        pipe.set_progress_bar_config(disable=True)
        state = accelerators.AcceleratorState()
        accelerators.apply_all(pipe, dm.FLUX_SPEC, cfg(cache=cache, cache_threshold=threshold,
                                                       steps=6, compiler=compiler,
                                                       compiler_config=compiler_config),
                               lambda e: None, state)
        outs.append(pipe(**dm.call_kwargs(pipe, 6)).images)
        counts.append((state.cache_stats.computed(), state.cache_stats.skipped()))
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
    assert counts[0] == counts[1] and counts[0][1] >= 1
    limit = getattr(dynamo_config, "recompile_limit", None) or dynamo_config.cache_size_limit
    assert limit >= 64  # the cache's variants are not cut off at Dynamo's default 8


# --------------------------------------------------------------------------- attention
@pytest.mark.parametrize("name", ["native", "flash", "math"])
def test_attention_backends_that_run_on_the_cpu(name):
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    reference = step(dm.FLUX_SPEC, dm.flux_transformer())
    before = _AttentionBackendRegistry._active_backend
    assert accelerators.get("attention").available_for(cfg(attention_backend=name), "cpu")[0]
    holder, notes = applied(dm.FLUX_SPEC, dm.flux_transformer(), attention_backend=name)
    backends = {p._attention_backend for p in attention._processors(holder.transformer)}
    assert {getattr(b, "value", b) for b in backends} == {attention.BACKENDS[name]}
    assert _AttentionBackendRegistry._active_backend == before  # nothing process-wide
    torch.testing.assert_close(step(dm.FLUX_SPEC, holder.transformer), reference, atol=1e-5,
                               rtol=1e-5)
    assert any(f"attention backend {name}" in n for n in notes)


@pytest.mark.parametrize("name", ["cudnn", "efficient", "flash-attn", "flash3"])
def test_gpu_attention_backends_refuse_the_cpu_before_loading(name):
    with pytest.raises(AcceleratorUnavailableError, match="needs a CUDA GPU") as info:
        accelerators.check_stacked(cfg(attention_backend=name), "cpu")
    assert "\n" not in str(info.value)


def test_half_precision_kernels_refuse_float32_and_missing_packages(monkeypatch):
    ok, reason = attention.available("cudnn", "cuda", "float32")
    assert not ok and "fp16/bf16" in reason
    monkeypatch.setattr(versions, "dist_version", lambda name: None)
    ok, reason = attention.available("flash-attn", "cuda", "bfloat16")
    assert not ok and "pip install flash-attn" in reason


def test_attention_backend_refuses_models_off_the_dispatcher():
    with pytest.raises(AcceleratorUnavailableError, match="not on diffusers' attention"):
        applied(dm.SD3_SPEC, dm.sd3_transformer(), attention_backend="native")
    with pytest.raises(ConfigError, match="not on diffusers' attention dispatcher"):
        accelerators.check_family(cfg(attention_backend="native"), families.get("sdxl"))


# --------------------------------------------------------------------------- fused QKV
@pytest.mark.parametrize("spec,build", [(dm.FLUX_SPEC, dm.flux_transformer),
                                        (dm.SD3_SPEC, dm.sd3_transformer)])
def test_fused_qkv_is_lossless(spec, build):
    reference = step(spec, build())
    holder, notes = applied(spec, build(), fuse_qkv=True)
    assert any(getattr(m, "fused_projections", False) for m in holder.transformer.modules())
    torch.testing.assert_close(step(spec, holder.transformer), reference, atol=1e-5,
                               rtol=1e-5)
    assert any("fused QKV projections in transformer" in n for n in notes)


def test_fused_qkv_twice_fuses_once():
    """compiler_config fuse_qkv (the compiler's prepare) and --fuse-qkv together."""
    holder, notes = applied(dm.FLUX_SPEC, dm.flux_transformer(), fuse_qkv=True,
                            compiler="compile",
                            compiler_config={"fuse_qkv": True, "backend": "eager"})
    assert any("already fused" in n for n in notes)
    step(dm.FLUX_SPEC, holder.transformer)  # still runs


# --------------------------------------------------------------------------- quantization
class FakeTorchao:
    """torchao.quantization stand-in (CI has no torchao): records the layers kept."""

    def __init__(self):
        self.kept = []

    def Int8WeightOnlyConfig(self):  # noqa: N802 (torchao's name)
        return object()

    def quantize_(self, module, config, filter_fn):
        self.kept += [fqn for fqn, sub in module.named_modules() if filter_fn(sub, fqn)]


@pytest.fixture
def fake_torchao(monkeypatch):
    dm.flux_transformer()  # diffusers' lazy imports first: they look for the real torchao
    fake = FakeTorchao()
    package = types.ModuleType("torchao")
    submodule = types.ModuleType("torchao.quantization")
    package.__spec__ = importlib.machinery.ModuleSpec("torchao", None, is_package=True)
    submodule.__spec__ = importlib.machinery.ModuleSpec("torchao.quantization", None)
    submodule.quantize_ = fake.quantize_
    submodule.Int8WeightOnlyConfig = fake.Int8WeightOnlyConfig
    package.quantization = submodule
    monkeypatch.setitem(sys.modules, "torchao", package)
    monkeypatch.setitem(sys.modules, "torchao.quantization", submodule)
    return fake


@pytest.mark.parametrize("modules", [None, ["transformer"], ["unet"]])
def test_int8_weight_only_quantizes_the_transformer(fake_torchao, modules):
    transformer = dm.flux_transformer()
    config = {"modules": modules} if modules else {}
    _, notes = applied(dm.FLUX_SPEC, transformer, quantize="int8wo", quantize_config=config)
    linears = [fqn for fqn, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)]
    assert fake_torchao.kept == linears
    assert any(f"quantized transformer ({len(linears)} linear layers)" in n for n in notes)


@pytest.mark.parametrize("spec,build", [
    (dm.FLUX_SPEC, dm.flux_transformer),  # declared _repeated_blocks
    (dm.SD3_SPEC, dm.sd3_transformer),    # declares [] : the spec's JointTransformerBlock
])
def test_quantize_under_cudagraph_keeps_to_the_compiled_transformer_blocks(fake_torchao, spec,
                                                                           build):
    transformer = build()
    quantize.apply(Holder(transformer), spec,
                   cfg(compiler="cudagraph", quantize="int8wo",
                       compiler_config={"regional": True}), lambda e: None)
    assert fake_torchao.kept and all(fqn.startswith(("transformer_blocks.",
                                                     "single_transformer_blocks."))
                                     for fqn in fake_torchao.kept)


def test_real_torchao_int8_weight_only_stays_close_to_eager():
    pytest.importorskip("torchao")
    reference = step(dm.FLUX_SPEC, dm.flux_transformer())
    holder, _ = applied(dm.FLUX_SPEC, dm.flux_transformer(), quantize="int8wo")
    out = step(dm.FLUX_SPEC, holder.transformer)
    error = (out - reference).norm() / reference.norm()
    assert 0 < error < 0.05


def test_fp8_on_the_cpu_is_one_line_even_without_torchao(monkeypatch):
    monkeypatch.setattr(versions, "dist_version", lambda name: None)
    with pytest.raises(AcceleratorUnavailableError, match="float8 needs a CUDA GPU") as info:
        accelerators.check_stacked(cfg(quantize="fp8dq"), "cpu")
    assert "\n" not in str(info.value)


def test_fp8_on_a_gpu_older_than_ada_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (8, 6))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA A10")
    ok, reason = quantize.available("fp8dq", "cuda")
    assert not ok and reason == "float8 needs compute capability >= 8.9; NVIDIA A10 has 8.6"


def test_torchao_missing_names_the_extra(monkeypatch):
    monkeypatch.setattr(versions, "dist_version", lambda name: None)
    ok, reason = quantize.available("int8wo", "cpu")
    assert not ok and "pip install 'diffbench[quantize]'" in reason


def test_fp8_on_the_cpu_cli_exit_2_before_loading(capsys, monkeypatch):
    from diffbench.cli.main import main
    from diffbench.engine import models

    monkeypatch.setattr(models, "load_pipeline", lambda *a, **k: pytest.fail("loaded a model"))
    code = main(["run", "--model", "tiny-sd15", "--quantize", "fp8dq", "--device", "cpu",
                 "--in-process"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "float8 needs a CUDA GPU" in err[0]


# --------------------------------------------------------------------------- quality
class Runs:
    """A history stand-in: ``list`` returns the runs newest first (the finder's contract)."""

    def __init__(self, *runs):
        self.runs = list(runs)

    def list(self, model=None, compiler=None, status=None):
        return [r for r in self.runs if (compiler is None or r.config["compiler"] == compiler)]


@pytest.mark.parametrize("settings", [dict(cache="first-block", cache_threshold=0.2),
                                      dict(cache="pab"), dict(quantize="int8wo"),
                                      dict(attention_backend="flash"), dict(fuse_qkv=True)])
def test_transformer_accelerators_compare_with_the_eager_baseline(tmp_path, settings):
    """Every lossy (and lossless) transformer accelerator is measured against the eager run of
    the same settings; an accelerated run is never anyone's baseline."""
    from PIL import Image

    from diffbench.engine import baseline
    from diffbench.engine.result import RunResult

    def saved(name, shift):
        path = tmp_path / f"{name}.png"
        image = Image.new("RGB", (32, 32))
        image.putdata([((4 * x + shift) % 256, 4 * y, 100) for y in range(32) for x in range(32)])
        image.save(path)
        return str(path)

    common = dict(dtype="bfloat16", steps=28, height=1024, width=1024)
    eager = RunResult(config=cfg(**common).to_dict(), image_path=saved("eager", 0))
    other = RunResult(config=cfg(**common, cache="taylorseer").to_dict(),
                      image_path=saved("other", 9))
    run = RunResult(config=cfg(**common, **settings).to_dict(), image_path=saved("run", 3))
    assert baseline.needs_baseline(run) and not baseline.is_eager(other.config)
    assert baseline.attach(run, Runs(other, eager))
    assert run.metrics.baseline_run_id == eager.run_id and 20 < run.metrics.psnr_db < 60
    off = baseline.eager_config(cfg(**common, **settings))
    assert baseline.is_eager(off.to_dict()) and baseline.same_settings(off.to_dict(),
                                                                        run.config)
    # a record from before these settings existed counts as eager
    old = {k: v for k, v in eager.config.items()
           if k not in ("cache", "cache_threshold", "attention_backend", "fuse_qkv")}
    assert baseline.is_eager(old)


def test_doctor_lists_the_transformer_plugins_and_prints_the_extra(capsys, monkeypatch):
    from diffbench.cli.main import main

    real = versions.dist_version
    monkeypatch.setattr(versions, "dist_version",
                        lambda name: None if name == "torchao" else real(name))
    monkeypatch.setenv("COLUMNS", "250")  # one line per table row
    assert main(["doctor", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for name in ("cache first-block", "cache pab", "attention flash", "fuse-qkv"):
        assert name in out
    # the brackets survive rich's markup
    assert "torchao is not installed (pip install 'diffbench[quantize]'" in out
