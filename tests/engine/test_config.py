"""Profiles (TOML presets) and their merge with command-line overrides."""

from __future__ import annotations

import pytest

from diffbench.engine.config import DEFAULT_PROMPT
from diffbench.engine.errors import ConfigError
from diffbench.engine.profiles import build_config, list_profiles, load_profile, profiles_dir


def test_shipped_profiles_load_and_are_valid():
    names = {p.name for p in list_profiles()}
    assert {"tiny-sd15", "tiny-sdxl", "tiny-pix2pix", "realvisxl-v4", "realvisxl-v4-lightning",
            "instruct-pix2pix"} <= names
    for profile in list_profiles():
        assert profile.description, profile.name
        if "pix2pix" not in profile.name:  # pix2pix profiles need an input image
            build_config(profile.name)


def test_seed_profiles_carry_the_seed_defaults():
    for name, model in [("realvisxl-v4", "SG161222/RealVisXL_V4.0"),
                        ("realvisxl-v4-lightning", "SG161222/RealVisXL_V4.0_Lightning"),
                        ("instruct-pix2pix", "timbrooks/instruct-pix2pix")]:
        settings = load_profile(name).settings
        assert settings["model"] == model
        assert settings["prompt"] == DEFAULT_PROMPT
        assert settings["seed"] == 333
        assert settings["scheduler"] == "EulerAncestralDiscreteScheduler"


def test_profiles_ship_inside_the_package():
    import diffbench.profiles

    assert profiles_dir().startswith(str(__import__("os").path.dirname(diffbench.profiles.__file__)))


def test_overrides_win_and_input_image_reinfers_task(input_png):
    cfg = build_config("tiny-sdxl", {"steps": 2})
    assert (cfg.model, cfg.steps, cfg.height, cfg.profile) == ("tiny-sdxl", 2, 256, "tiny-sdxl")
    assert cfg.task == "t2i"
    assert build_config("tiny-sdxl", {"input_image": input_png}).task == "i2i"


def test_pix2pix_profile_needs_an_input_image(input_png):
    with pytest.raises(ConfigError, match="needs an input image"):
        build_config("tiny-pix2pix")
    assert build_config("tiny-pix2pix", {"input_image": input_png}).task == "pix2pix"


@pytest.mark.parametrize("text,message", [
    ('stepz = 3\n', "unknown key 'stepz'"),
    ('steps = "ten"\n', "key 'steps' must be int, got str"),
    ('deepcache = 1\n', "key 'deepcache' must be bool"),
    ('height = true\n', "key 'height' must be int, got bool"),
    ('steps = [\n', "not valid TOML"),
    ('profile = "x"\n', "unknown key 'profile'"),
])
def test_bad_profile_names_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profile(str(path))
    assert str(path) in str(info.value) and message in str(info.value)


def test_floats_accept_integers_and_dicts_accept_json(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text('strength = 1\ncompiler_config = \'{"mode": "max-autotune"}\'\n'
                    '[extra_call_kwargs]\nguidance_rescale = 0.5\n')
    cfg = build_config(str(path))
    assert cfg.strength == 1 and cfg.compiler_config == {"mode": "max-autotune"}
    assert cfg.extra_call_kwargs == {"guidance_rescale": 0.5}


def test_unknown_profile_lists_shipped_ones():
    with pytest.raises(ConfigError, match="shipped profiles: .*tiny-sd15"):
        load_profile("nope")
