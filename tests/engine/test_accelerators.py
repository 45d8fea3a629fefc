"""Accelerator backends: config validation, availability reasons, and CPU-runnable behaviour."""

from __future__ import annotations

import os

import pytest

from diffbench.engine import accelerators, families
from diffbench.engine.accelerators import versions
from diffbench.engine.accelerators.options import parse_compile_options
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import AcceleratorUnavailableError, ConfigError

SEED_NEXFORT = {"mode": "max-optimize:max-autotune:low-precision",
                "memory_format": "channels_last", "dynamic": True}


#: The family of the stand-in pipelines below (a tiny SDXL UNet).
SD = families.get("sdxl")


def cfg(**kwargs) -> RunConfig:
    return RunConfig(model="tiny-sd15", **kwargs)


# --------------------------------------------------------------------------- registry
def test_every_config_compiler_has_a_backend():
    from diffbench.engine.config import COMPILERS

    backends = accelerators.all_backends()
    assert set(COMPILERS) <= set(backends)
    for name in COMPILERS:
        ok, reason = backends[name].available("cpu")
        assert isinstance(ok, bool) and isinstance(reason, str)
        assert ok or reason, f"{name}: unavailable without a reason"


# --------------------------------------------------------------------------- compile
def test_compile_seed_nexfort_mode_is_ignored_with_notice():
    notices = accelerators.get("compile").validate(cfg(compiler="compile",
                                                              compiler_config=SEED_NEXFORT))
    assert any("nexfort-only mode" in n and "max-optimize" in n for n in notices)
    opts, _ = accelerators.get("compile").options(
        cfg(compiler="compile", compiler_config=SEED_NEXFORT))
    assert opts.mode is None and opts.channels_last and opts.dynamic is True


def test_compile_max_autotune_defaults_and_overrides():
    backend = accelerators.get("compile-max-autotune")
    opts, notices = backend.options(cfg(compiler="compile-max-autotune"))
    assert opts.mode == "max-autotune" and notices == []
    opts, _ = backend.options(cfg(compiler="compile-max-autotune",
                                  compiler_config={"mode": "reduce-overhead"}))
    assert opts.mode == "reduce-overhead"
    # A nexfort mode falls back to the backend's own default, with a notice naming it.
    opts, notices = backend.options(cfg(compiler="compile-max-autotune",
                                        compiler_config=SEED_NEXFORT))
    assert opts.mode == "max-autotune" and "max-autotune" in notices[0]


@pytest.mark.parametrize("config, fragment", [
    ({"mode": 3}, "mode must be a string"),
    ({"mode": "fastest"}, "mode must be one of"),
    ({"fullgraph": "yes"}, "fullgraph must be true or false"),
    ({"dynamic": 1}, "dynamic must be true, false or null"),
    ({"memory_format": "nhwc"}, "memory_format must be one of"),
    ({"fuse_qkv": 1}, "fuse_qkv must be true or false"),
    ({"compile_repeated_blocks": "on"}, "compile_repeated_blocks must be true or false"),
    ({"backend": ""}, "backend must be"),
])
def test_compile_wrong_types_raise_one_line(config, fragment):
    with pytest.raises(ConfigError) as info:
        accelerators.get("compile").validate(cfg(compiler="compile",
                                                        compiler_config=config))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_compile_aliases_and_unknown_keys():
    opts, notices = parse_compile_options(
        {"fuse_qkv_projections": True, "compile_repeated_blocks": True, "options": {},
         "colour": "red"}, "compile")
    assert opts.fuse_qkv and opts.regional
    assert any("nexfort-only key 'options'" in n for n in notices)
    assert any("unknown compiler_config key 'colour'" in n for n in notices)
    assert opts.torch_kwargs() == {"fullgraph": False, "dynamic": None, "backend": "inductor"}


def test_none_ignores_seed_config_with_notices():
    notices = accelerators.get("none").validate(cfg(compiler_config=SEED_NEXFORT))
    assert len(notices) == 3 and "nexfort-only mode" in notices[0]


def test_compile_available_reasons(monkeypatch):
    backend = accelerators.get("compile")
    monkeypatch.setattr(versions, "torch_version", lambda: "1.13.1")
    ok, reason = backend.available("cpu")
    assert not ok and "torch >= 2.0" in reason and "1.13.1" in reason
    monkeypatch.setattr(versions, "torch_version", lambda: None)
    assert backend.available("cpu") == (False, "torch is not installed")


def test_compile_on_cpu_needs_cxx(monkeypatch):
    monkeypatch.setattr(versions, "cxx_compiler", lambda: None)
    ok, reason = accelerators.get("compile").available("cpu")
    assert not ok and "C++ compiler" in reason


# --------------------------------------------------------------------------- cudagraph
def test_cudagraph_needs_cuda_and_rejects_bad_combinations():
    backend = accelerators.get("cudagraph")
    ok, reason = backend.available("cpu")
    assert not ok and "CUDA" in reason
    with pytest.raises(AcceleratorUnavailableError, match="cannot run here"):
        accelerators.check(cfg(compiler="cudagraph"), "cpu")
    with pytest.raises(ConfigError, match="nest CUDA graphs"):
        backend.validate(cfg(compiler="cudagraph",
                                    compiler_config={"regional": True,
                                                     "mode": "reduce-overhead"}))
    assert backend.validate(cfg(compiler="cudagraph", deepcache=True)) == []
    notices = backend.validate(cfg(compiler="cudagraph",
                                          compiler_config={"fullgraph": True}))
    assert any("only with regional=true" in n for n in notices)


# --------------------------------------------------------------------------- onediff
def test_nexfort_not_installed_reason(monkeypatch):
    monkeypatch.setattr(versions, "dist_version", lambda name: None)
    ok, reason = accelerators.get("nexfort").available("cuda")
    assert not ok and reason.startswith("nexfort is not installed")
    ok, reason = accelerators.get("oneflow").available("cuda")
    assert not ok and reason.startswith("oneflow is not installed")


def test_nexfort_built_for_other_torch(monkeypatch):
    installed = {"nexfort": "0.1.dev264+torch241cu121", "torch": "2.11.0+cu130",
                 "onediffx": "1.2.0"}
    monkeypatch.setattr(versions, "dist_version", installed.get)
    ok, reason = accelerators.get("nexfort").available("cuda")
    assert not ok
    assert "built against torch 2.4.1 while this is torch 2.11.0+cu130" in reason


def test_nexfort_pinned_torch_and_missing_onediffx(monkeypatch):
    installed = {"nexfort": "0.1.dev300", "torch": "2.11.0"}
    monkeypatch.setattr(versions, "dist_version", installed.get)
    monkeypatch.setattr(versions, "torch_required_by", lambda dist: "torch<=2.5.1")
    ok, reason = accelerators.get("nexfort").available("cuda")
    assert not ok and "requires torch<=2.5.1 while this is torch 2.11.0" in reason
    monkeypatch.setattr(versions, "torch_required_by", lambda dist: None)
    ok, reason = accelerators.get("nexfort").available("cuda")
    assert not ok and reason.startswith("onediffx is not installed")


def test_onediff_backends_cpu_reason_and_preflight():
    for name in ("nexfort", "oneflow"):
        ok, reason = accelerators.get(name).available("cpu")
        assert not ok and "CUDA" in reason
        with pytest.raises(AcceleratorUnavailableError) as info:
            accelerators.check(cfg(compiler=name), "cpu")
        assert "\n" not in str(info.value)


def test_nexfort_config_validation():
    backend = accelerators.get("nexfort")
    assert backend.validate(cfg(compiler="nexfort", compiler_config=SEED_NEXFORT)) == []
    with pytest.raises(ConfigError, match="options must be a JSON object"):
        backend.validate(cfg(compiler="nexfort", compiler_config={"options": [1]}))
    with pytest.raises(ConfigError, match="mode must be a string"):
        backend.validate(cfg(compiler="nexfort", compiler_config={"mode": 1}))
    notices = accelerators.get("oneflow").validate(
        cfg(compiler="oneflow", compiler_config={"mode": "x"}))
    assert "takes no compiler_config" in notices[0]


def test_version_helpers():
    assert versions.version_tuple("2.11.0+cu130") == (2, 11, 0)
    assert versions.built_for_torch("0.1.dev264+torch241cu121") == "2.4.1"
    assert versions.built_for_torch("0.1.dev264") is None
    assert versions.dist_version("surely-not-installed-dist") is None


# --------------------------------------------------------------------------- quantize
def test_quantize_validation():
    from diffbench.engine.accelerators import quantize

    notices = accelerators.validate_all(cfg(compiler="compile", quantize="int8dq",
                                            quantize_config={"quant_type": "int8_dynamic",
                                                             "min_features": 4096,
                                                             "extra": 1}))
    assert any("unknown quantize_config key 'extra'" in n for n in notices)
    with pytest.raises(ConfigError, match="contradicts"):
        quantize.validate(cfg(quantize="int8wo", quantize_config={"quant_type": "int8_dynamic"}))
    with pytest.raises(ConfigError, match="modules"):
        quantize.validate(cfg(quantize="int8wo", quantize_config={"modules": ["unet", "x"]}))
    with pytest.raises(ConfigError, match="min_features"):
        quantize.validate(cfg(quantize="int8wo", quantize_config={"min_features": -1}))
    assert any("without torch.compile" in n for n in quantize.validate(cfg(quantize="int8wo")))
    ok, reason = quantize.available("fp8dq", "cpu")
    assert not ok and ("8.9" in reason or "torchao" in reason)


def test_quantize_under_cudagraph_needs_regional_compilation():
    from diffbench.engine.accelerators import quantize

    with pytest.raises(ConfigError, match="needs regional compilation"):
        quantize.validate(cfg(compiler="cudagraph", quantize="int8dq"))
    notices = quantize.validate(cfg(compiler="cudagraph", quantize="int8dq",
                                    compiler_config={"regional": True},
                                    quantize_config={"modules": ["unet", "controlnet"]}))
    assert any("only the linear layers inside the UNet's compiled" in n for n in notices)
    assert any("leaves the ControlNet unquantized" in n for n in notices)
    assert not any("without torch.compile" in n for n in notices)
    with pytest.raises(ConfigError, match="nothing left to quantize"):
        quantize.validate(cfg(compiler="cudagraph", quantize="int8dq",
                              compiler_config={"regional": True},
                              quantize_config={"modules": ["controlnet"]}))
    with pytest.raises(ConfigError, match="coordinate_descent_tuning must be true or false"):
        quantize.validate(cfg(compiler="compile", quantize="int8dq",
                              quantize_config={"coordinate_descent_tuning": "yes"}))


class _FakeTorchao:
    """Stands in for torchao.quantization (CI has no torchao): records which layers the filter
    keeps and, like torchao's configs with ``set_inductor_config`` True (the default) or the old
    factory API without that field, runs the equivalent of torchao's
    recommended_inductor_config_setter (torchao/quantization/utils.py)."""

    def __init__(self, new_api: bool):
        self.new_api = new_api
        self.kept: list[tuple] = []  # (quantized component, fqn)
        self.fail = False  # raise after changing the settings, as a torchao bug would

    def Int8DynamicActivationInt8WeightConfig(self):  # noqa: N802 (torchao's name)
        import dataclasses

        @dataclasses.dataclass
        class Config:
            set_inductor_config: bool = True

        return Config() if self.new_api else object()

    def quantize_(self, module, config, filter_fn):
        import torch
        import torch._inductor.config as inductor_config

        self.kept += [(module, fqn) for fqn, sub in module.named_modules() if filter_fn(sub, fqn)]
        if getattr(config, "set_inductor_config", True) or self.fail:
            inductor_config.coordinate_descent_tuning = True
            inductor_config.coordinate_descent_check_all_directions = True
            torch.set_float32_matmul_precision("high")
        if self.fail:
            raise RuntimeError("torchao broke")


@pytest.fixture(params=["new-api", "old-api"])
def fake_torchao(monkeypatch, request):  # noqa: D401
    import importlib.machinery
    import sys
    import types

    import torch
    import torch._inductor.config as inductor_config

    fake = _FakeTorchao(new_api=request.param == "new-api")
    package = types.ModuleType("torchao")
    submodule = types.ModuleType("torchao.quantization")
    package.__spec__ = importlib.machinery.ModuleSpec("torchao", None, is_package=True)
    submodule.__spec__ = importlib.machinery.ModuleSpec("torchao.quantization", None)
    submodule.quantize_ = fake.quantize_
    submodule.Int8DynamicActivationInt8WeightConfig = fake.Int8DynamicActivationInt8WeightConfig
    package.quantization = submodule
    monkeypatch.setitem(sys.modules, "torchao", package)
    monkeypatch.setitem(sys.modules, "torchao.quantization", submodule)
    precision = torch.get_float32_matmul_precision()
    # torch's config modules keep their values outside the module __dict__: monkeypatch's undo
    # would delete the flags; their own patch() puts the old values back.
    with inductor_config.patch(coordinate_descent_tuning=False,
                               coordinate_descent_check_all_directions=False,
                               force_fuse_int_mm_with_mul=False):
        yield fake
    torch.set_float32_matmul_precision(precision)


def _pipe(declared=None, controlnet=False):
    """A stand-in pipeline with the tiny SDXL UNet (optionally declaring other repeated blocks)
    and a ControlNet-like module."""
    import types

    import torch

    from diffbench.engine.models import tiny

    unet = tiny._unet(sdxl=True)
    if declared is not None:
        unet._repeated_blocks = declared
    pipe = types.SimpleNamespace(unet=unet)
    if controlnet:
        pipe.controlnet = torch.nn.Sequential(torch.nn.Linear(8, 8))
    return pipe


def test_quantize_keeps_torchaos_coordinate_descent_tuning_off(fake_torchao):
    import torch
    import torch._inductor.config as inductor_config

    from diffbench.engine.accelerators import quantize
    from diffbench.engine.events import LogMessage

    precision = torch.get_float32_matmul_precision()
    events = []
    quantize.apply(_pipe(), SD, cfg(compiler="compile", quantize="int8dq"), events.append)
    assert fake_torchao.kept  # it did quantize
    assert inductor_config.coordinate_descent_tuning is False
    assert inductor_config.coordinate_descent_check_all_directions is False
    assert torch.get_float32_matmul_precision() == precision
    assert inductor_config.force_fuse_int_mm_with_mul is True
    put_back = [e for e in events if isinstance(e, LogMessage) and "put back" in e.text]
    # The old API can only be undone (and says so); the new one is asked not to touch inductor.
    assert bool(put_back) == (not fake_torchao.new_api)
    # A quantization that fails midway still leaves the settings as they were, and its own
    # error is the one raised.
    fake_torchao.fail = True
    with pytest.raises(RuntimeError, match="torchao broke"):
        quantize.apply(_pipe(), SD, cfg(compiler="compile", quantize="int8dq"), events.append)
    assert inductor_config.coordinate_descent_tuning is False
    assert torch.get_float32_matmul_precision() == precision
    fake_torchao.fail = False
    # Asked for: torchao's settings stay.
    quantize.apply(_pipe(), SD, cfg(compiler="compile", quantize="int8dq", quantize_config={
        "coordinate_descent_tuning": True}), events.append)
    assert inductor_config.coordinate_descent_tuning is True


def test_quantize_under_cudagraph_keeps_layers_outside_compiled_blocks(fake_torchao):
    from diffbench.engine.accelerators import quantize

    def kept_under(pipe, classes):
        prefixes = [fqn + "." for fqn, sub in pipe.unet.named_modules()
                    if type(sub).__name__ in classes]
        unet_kept = [fqn for module, fqn in fake_torchao.kept if module is pipe.unet]
        return unet_kept and all(fqn.startswith(tuple(prefixes)) for fqn in unet_kept)

    pipe = _pipe(controlnet=True)
    quantize.apply(pipe, SD, cfg(compiler="cudagraph", quantize="int8dq",
                             compiler_config={"regional": True},
                             quantize_config={"modules": ["unet", "controlnet"]}),
                   lambda e: None)
    assert kept_under(pipe, ("BasicTransformerBlock",))
    assert not [fqn for module, fqn in fake_torchao.kept if module is pipe.controlnet]
    # A model declaring other repeated blocks: those are what regional compiles and quantizes...
    fake_torchao.kept.clear()
    pipe = _pipe(declared=["ResnetBlock2D"])
    quantize.apply(pipe, SD, cfg(compiler="cudagraph", quantize="int8dq",
                             compiler_config={"regional": True}), lambda e: None)
    assert kept_under(pipe, ("ResnetBlock2D",))
    # ...unless regional_blocks names the classes, even the default one.
    fake_torchao.kept.clear()
    pipe = _pipe(declared=["ResnetBlock2D"])
    quantize.apply(pipe, SD, cfg(compiler="cudagraph", quantize="int8dq", compiler_config={
        "regional_blocks": ["BasicTransformerBlock"]}), lambda e: None)
    assert kept_under(pipe, ("BasicTransformerBlock",))
    # A typo in regional_blocks: the compiler's message, with the close name.
    with pytest.raises(AcceleratorUnavailableError, match="has no ResnetBlok2D modules "
                                                          r"\(did you mean ResnetBlock2D"):
        quantize.apply(_pipe(), SD, cfg(compiler="cudagraph", quantize="int8dq", compiler_config={
            "regional_blocks": ["ResnetBlok2D"]}), lambda e: None)
    # A model that declares no repeated blocks ([], as SD3's transformer): the family's blocks,
    # the ones regional compilation falls back to.
    fake_torchao.kept.clear()
    pipe = _pipe(declared=[])
    quantize.apply(pipe, SD, cfg(compiler="cudagraph", quantize="int8dq",
                             compiler_config={"regional": True}), lambda e: None)
    assert kept_under(pipe, ("BasicTransformerBlock",))
    # The time embedding's linears (outside every block) are quantized without cudagraph.
    fake_torchao.kept.clear()
    quantize.apply(_pipe(), SD, cfg(compiler="compile", quantize="int8dq"), lambda e: None)
    assert any(fqn.startswith("time_embedding.") for _m, fqn in fake_torchao.kept)


def test_quantize_missing_torchao_reason(monkeypatch):
    from diffbench.engine.accelerators import quantize

    monkeypatch.setattr(versions, "dist_version", lambda name: None)
    ok, reason = quantize.available("int8wo", "cpu")
    assert not ok and "torchao is not installed" in reason
    with pytest.raises(AcceleratorUnavailableError, match="quantize 'int8wo' cannot run"):
        accelerators.check_all(cfg(quantize="int8wo"), "cpu")


# --------------------------------------------------------------------------- compile cache
def test_compile_cache_dir_per_profile(tmp_path, monkeypatch):
    from diffbench.engine.accelerators import compile_cache

    monkeypatch.setenv("DIFFBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    events = []
    run = cfg(compiler="compile", profile="profiles/My Profile.toml")
    state = compile_cache.prepare(run, events.append)
    assert state.state == "cold"
    key = "My_Profile__tiny-sd15__compile"
    assert state.directory == str(tmp_path / "compile" / key)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"].startswith(state.directory)
    # Anything cached there makes the next run warm...
    (tmp_path / "compile" / key / "inductor" / "entry").write_text("x")
    assert compile_cache.prepare(run, events.append).state == "warm"
    # ...but not another model's or another compiler's run under the same profile.
    for other in (RunConfig(model="tiny-sdxl", compiler="compile",
                            profile="profiles/My Profile.toml"),
                  cfg(compiler="cudagraph", profile="profiles/My Profile.toml")):
        assert compile_cache.prepare(other, events.append).state == "cold"
    # A local model folder gives its name; a very long key stays a valid file name.
    folder = tmp_path / "my model"
    folder.mkdir()
    assert compile_cache.cache_key(RunConfig(model=str(folder))) == "my_model__none"
    long_key = compile_cache.cache_key(RunConfig(model="o/" + "m" * 300))
    assert len(long_key) <= 120 and long_key.startswith("o_mmm")
    assert long_key != compile_cache.cache_key(RunConfig(model="o/" + "m" * 301))
    explicit = compile_cache.cache_dir(cfg(compile_cache_dir=str(tmp_path / "mine")))
    assert explicit == str(tmp_path / "mine")


def test_regional_compile_drops_inductor_cuda_graphs_with_notice():
    """Per-block CUDA graphs overwrite the residual stream (seen on the H200): fall back."""
    backend = accelerators.get("compile-max-autotune")
    opts, notices = backend.options(cfg(compiler="compile-max-autotune",
                                        compiler_config={"regional": True}))
    assert opts.mode == "max-autotune-no-cudagraphs"
    assert any("cannot use mode max-autotune's CUDA graphs" in n for n in notices)
    opts, _ = accelerators.get("compile").options(
        cfg(compiler="compile", compiler_config={"regional": True, "mode": "reduce-overhead"}))
    assert opts.mode == "default"


def test_cudagraph_call_signature_ignores_values_but_not_shapes():
    torch = pytest.importorskip("torch")
    from diffbench.engine.accelerators.cudagraph import _copy_into, _signature, _to_static

    a = (torch.zeros(2, 4), torch.tensor(3.0))
    kw = {"added_cond_kwargs": {"time_ids": torch.zeros(2, 6)}, "return_dict": False}
    same = _signature((torch.ones(2, 4), torch.tensor(9.0)),
                      {"added_cond_kwargs": {"time_ids": torch.ones(2, 6)},
                       "return_dict": False})
    assert _signature(a, kw) == same
    assert _signature((torch.zeros(3, 4), a[1]), kw) != same  # a new shape: a new graph
    assert _signature(a, dict(kw, return_dict=True)) != same
    # A scalar timestep is data (a buffer), not part of the key.
    assert _signature((a[0], 5), kw) == _signature((a[0], 7), kw)
    static = _to_static(kw, "cpu")
    _copy_into(static, {"added_cond_kwargs": {"time_ids": torch.full((2, 6), 2.0)},
                        "return_dict": False})
    assert static["added_cond_kwargs"]["time_ids"].eq(2.0).all()
    assert kw["added_cond_kwargs"]["time_ids"].eq(0).all()  # the caller's tensor untouched


def test_regional_blocks_imply_regional_and_are_checked():
    opts, _ = parse_compile_options({"regional_blocks": ["BasicTransformerBlock",
                                                         "ResnetBlock2D"]}, "cudagraph")
    assert opts.regional and opts.regional_blocks == ("BasicTransformerBlock", "ResnetBlock2D")
    assert opts.compile_vae is False and "blocks=BasicTransformerBlock+ResnetBlock2D" in \
        opts.describe()
    for bad in ([], "ResnetBlock2D", [""], [3]):
        with pytest.raises(ConfigError, match="regional_blocks must be a non-empty list"):
            parse_compile_options({"regional_blocks": bad}, "compile")
    with pytest.raises(ConfigError, match="regional_blocks needs regional"):
        parse_compile_options({"regional": False, "regional_blocks": ["X"]}, "compile")
    with pytest.raises(ConfigError, match='drop "compile_repeated_blocks": false'):
        parse_compile_options({"compile_repeated_blocks": False, "regional_blocks": ["X"]},
                              "compile")
    assert parse_compile_options({"regional_blocks": None}, "compile")[0].regional is False
    typo = accelerators.validate_all(cfg(compiler="compile", compiler_config={
        "regional_block": ["ResnetBlock2D"]}))
    assert any("unknown compiler_config key 'regional_block'" in n and
               "did you mean 'regional_blocks'?" in n for n in typo), typo
    # No unknown-key notice on either backend that compiles regionally.
    for compiler in ("compile", "cudagraph"):
        notices = accelerators.validate_all(cfg(compiler=compiler, compiler_config={
            "regional_blocks": ["ResnetBlock2D"]}))
        assert not any("regional_blocks" in n for n in notices), notices


def test_regional_blocks_that_do_not_exist_fail_in_one_line():
    import torch
    import torch._dynamo.config as dynamo_config

    from diffbench.engine.accelerators.compile import REGIONAL_RECOMPILE_LIMIT, compile_regional

    class Block(torch.nn.Module):
        def forward(self, x):
            return x

    unet = torch.nn.Sequential(Block(), Block())
    with dynamo_config.patch(recompile_limit=8):  # restored on exit (see fake_torchao)
        with pytest.raises(AcceleratorUnavailableError,
                           match="Sequential has no Blok modules .did you mean Block"):
            compile_regional(unet, {"backend": "eager"}, ("Block", "Blok"))
        assert dynamo_config.recompile_limit == 8  # nothing compiled, nothing changed
        assert compile_regional(unet, {"backend": "eager"}, ("Block",)) == 2
        # Every distinct block shape compiles once: torch's default cap of 8 is too low for SDXL.
        assert dynamo_config.recompile_limit == REGIONAL_RECOMPILE_LIMIT


def test_regional_skips_vae_compile_unless_asked():
    assert parse_compile_options({"regional": True}, "compile")[0].compile_vae is False
    assert parse_compile_options({}, "compile")[0].compile_vae is True
    assert parse_compile_options({"regional": True, "compile_vae": True},
                                 "compile")[0].compile_vae is True


def test_cudagraph_regional_max_autotune_drops_nested_graphs():
    opts, notices = accelerators.get("cudagraph").options(
        cfg(compiler="cudagraph", compiler_config={"regional": True, "mode": "max-autotune"}))
    assert opts.mode == "max-autotune-no-cudagraphs" and opts.regional
    assert any("nest inductor's CUDA graphs" in n for n in notices)
