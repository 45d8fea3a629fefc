"""The model picker lists three groups: built-in models, diffusers pipelines in the local
Hugging Face cache (a fake cache folder here), and known ones that need a download; enter
puts the pick into the form."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, OptionList

from diffbench.engine.catalog.settings import BUILTIN_MODELS
from diffbench.tui import model_list
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.screens.model_picker import ModelPickerScreen
from fakes import FakeEngine, MemoryHistory, wait_until


def fake_cache(root: Path) -> Path:
    """A hub cache holding one diffusers pipeline (model_index.json) of 2 MiB, a
    transformers-only repo (no model_index.json) and a dataset."""
    def repo(kind: str, repo_id: str, files: dict[str, bytes]) -> None:
        folder = root / f"{kind}--{repo_id.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text("abc123")
        snap = folder / "snapshots" / "abc123"
        blobs = folder / "blobs"
        blobs.mkdir()
        for i, (name, data) in enumerate(files.items()):
            blob = blobs / f"blob{i}"
            blob.write_bytes(data)
            (snap / name).parent.mkdir(parents=True, exist_ok=True)
            (snap / name).symlink_to(blob)
    repo("models", "stabilityai/stable-diffusion-xl-base-1.0",
         {"model_index.json": b"{}", "unet/diffusion_pytorch_model.safetensors":
          b"\0" * (2 * 1024 * 1024)})
    repo("models", "openai/clip-vit-large-patch14", {"config.json": b"{}"})
    repo("datasets", "someone/images", {"data.json": b"{}"})
    return root


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(fake_cache(tmp_path / "hub")))


def test_model_entries_in_three_groups(tmp_path):
    entries = model_list.model_entries()
    groups = {g: [e.name for e in entries if e.group == g] for g in ("built-in", "cached",
                                                                     "download")}
    assert groups["built-in"] == list(BUILTIN_MODELS)
    assert groups["cached"] == ["stabilityai/stable-diffusion-xl-base-1.0"]  # pipelines only
    cached = next(e for e in entries if e.group == "cached")
    assert cached.note == "0.0 GiB on disk"  # 2 MiB
    # known pipelines not in the cache, with the command that fetches them
    assert "black-forest-labs/FLUX.1-dev" in groups["download"]
    assert "SG161222/RealVisXL_V4.0" in groups["download"]  # a shipped profile's model
    assert "stabilityai/stable-diffusion-xl-base-1.0" not in groups["download"]
    flux = next(e for e in entries if e.name == "black-forest-labs/FLUX.1-dev")
    assert flux.note == "hf download black-forest-labs/FLUX.1-dev"


def test_unreadable_cache_is_an_empty_one(tmp_path):
    assert model_list.cached_pipelines(tmp_path / "missing") == {}


async def test_picker_lists_the_groups_and_fills_the_model_field():
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPickerScreen)
                         and app.screen.scanned)
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        prompts = [str(options.get_option_at_index(i).prompt)
                   for i in range(options.option_count)]
        headings = [p for p in prompts if not p.startswith("  ")]
        assert headings == ["Built in (no download)", "In the local Hugging Face cache",
                            "Need a download first (no network is used here)"]
        assert any(p.startswith("  stabilityai/stable-diffusion-xl-base-1.0  0.0 GiB")
                   for p in prompts)
        assert any("hf download black-forest-labs/FLUX.1-schnell" in p for p in prompts)
        status = str(app.screen.query_one("#models_status").render())
        assert status.startswith(f"{len(BUILTIN_MODELS)} built in, 1 cached, ")
        # the current model is highlighted; pick the cached SDXL with the keyboard
        assert options.highlighted_option.id == "built-in:tiny-sd15"
        options.highlighted = options.get_option_index(
            "cached:stabilityai/stable-diffusion-xl-base-1.0")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ModelPickerScreen))
        assert app.query_one("#model", Input).value == "stabilityai/stable-diffusion-xl-base-1.0"
