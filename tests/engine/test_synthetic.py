"""synthetic-* models: architectures and parameter counts on the meta device (no weights on
the CPU), the random fill, and registration."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from diffbench.engine.models import get_builtin  # noqa: E402
from diffbench.engine.models import synthetic  # noqa: E402


def params_on_meta(factory) -> int:
    with torch.device("meta"):
        module = factory()
    return sum(p.numel() for p in module.parameters())


def test_registered_with_families_and_sizes():
    for name, family, size in (("synthetic-sdxl", "sdxl", 1024), ("synthetic-sd15", "sd15", 512),
                               ("synthetic-pix2pix", "pix2pix", 512)):
        model = get_builtin(name)
        assert model is not None and model.family == family and model.native_size == size


def test_sdxl_architecture_parameter_counts():
    tok = synthetic._tokenizer()
    # Published sizes: SDXL base UNet 2,567,463,684; VAE 83,653,863; CLIP ViT-L text 123.06 M;
    # OpenCLIP bigG text with projection 694.66 M.
    assert params_on_meta(lambda: synthetic._unet(synthetic.SDXL_UNET)) == 2_567_463_684
    assert params_on_meta(lambda: synthetic._vae(synthetic.SDXL_VAE)) == 83_653_863
    assert params_on_meta(lambda: synthetic._clip(synthetic.CLIP_L, False, tok)) == 123_060_480
    assert params_on_meta(lambda: synthetic._clip(synthetic.CLIP_BIGG, True, tok)) == 694_659_840


def test_sd15_and_pix2pix_unets():
    sd15 = params_on_meta(lambda: synthetic._unet(synthetic.SD15_UNET))
    assert sd15 == 859_520_964
    pix = params_on_meta(lambda: synthetic._unet(dict(synthetic.SD15_UNET, in_channels=8)))
    assert pix - sd15 == 4 * 320 * 3 * 3  # conv_in takes 4 more (image latent) channels


def test_fill_is_random_scaled_and_deterministic():
    pool = synthetic.RandomPool("cpu", seed=0)

    def build():
        return torch.nn.Sequential(torch.nn.Linear(256, 64), torch.nn.LayerNorm(64))

    first = synthetic.materialise(build, "cpu", torch.float32, pool)
    weight, bias = first[0].weight, first[0].bias
    assert weight.dtype == torch.float32 and not weight.requires_grad
    assert (weight != 0).float().mean() > 0.99
    assert abs(weight.std().item() - 1 / 16) < 0.01  # 1/sqrt(fan_in=256)
    assert abs(first[1].weight.mean().item() - 1.0) < 0.05  # norm weights near 1
    assert 0 < bias.abs().max().item() < 0.2
    again = synthetic.materialise(build, "cpu", torch.float32, synthetic.RandomPool("cpu", 0))
    assert torch.equal(again[0].weight, weight)


def test_fill_handles_tensors_larger_than_the_pool(monkeypatch):
    monkeypatch.setattr(synthetic, "POOL_ELEMENTS", 1 << 10)
    pool = synthetic.RandomPool("cpu")
    big = torch.full((5000,), float("nan"))
    pool.fill_(big, 1.0)
    assert not torch.isnan(big).any() and big.std() > 0.5


def test_position_ids_buffer_is_recomputed():
    tok = synthetic._tokenizer()
    small = dict(synthetic.CLIP_L, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                 num_attention_heads=2, projection_dim=16, vocab_size=600)
    model = synthetic.materialise(lambda: synthetic._clip(small, False, tok), "cpu",
                                  torch.float32, synthetic.RandomPool("cpu"))
    ids = next(b for n, b in model.named_buffers() if n.endswith("position_ids"))
    assert ids.tolist()[0] == list(range(77))
    out = model(tok(["a cat"], padding="max_length", return_tensors="pt").input_ids)
    assert torch.isfinite(out.last_hidden_state).all()
