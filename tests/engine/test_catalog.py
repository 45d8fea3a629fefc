"""The settings catalog: each setting's declaration is what the CLI, profiles, sweeps,
RunConfig and the baseline key do — so adding a setting to the catalog is the only step."""

from __future__ import annotations

import argparse
import json

import pytest
import tomli_w

from diffbench.engine import catalog
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError
from diffbench.engine.profiles import load_profile
from diffbench.engine.quality import baseline_key
from diffbench.engine.sweep.grid import coerce_value
from settings_samples import every_setting_changed


def _as_text(value) -> str:
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _parser(register) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser()
    return register(top.add_subparsers())


def _argv(sample: dict, skip: tuple = ()) -> list[str]:
    argv = []
    for setting in catalog.cli_settings():
        if setting.name in skip:
            continue
        if setting.cli.action == "store_true":
            assert sample[setting.name] is True  # the sample turns every switch on
            argv.append(setting.cli.flag)
        else:
            argv += [setting.cli.flag, _as_text(sample[setting.name])]
    return argv


@pytest.mark.parametrize("command,skip", [("run", ()), ("sweep", ()),
                                          ("throughput", ("steps",)), ("check-params", ())])
def test_every_declared_flag_exists_and_carries_its_setting(tmp_path, command, skip):
    from diffbench.cli import check_params, run, sweep, throughput

    register = {"run": run.add_parser, "sweep": sweep.add_parser,
                "throughput": throughput.add_parser, "check-params": check_params.add_parser}
    parser = _parser(register[command])
    by_dest = {a.dest: a for a in parser._actions}
    for setting in catalog.SETTINGS:
        if setting.cli is None or setting.name in skip:
            assert setting.name not in by_dest or setting.name in skip, setting.name
            continue
        action = by_dest[setting.name]
        assert action.option_strings == [setting.cli.flag]
        assert action.help == setting.help

    sample = every_setting_changed(tmp_path)
    args = parser.parse_args(_argv(sample, skip))
    overrides = run.config_overrides(args)
    assert args.profile == sample["profile"]
    expected = {k: v for k, v in sample.items()
                if k not in skip and k != "profile" and catalog.BY_NAME[k].cli is not None}
    built = RunConfig(**overrides).to_dict()
    assert {k: built[k] for k in expected} == expected


def test_run_help_lists_the_flags_in_field_order_plain_first():
    from diffbench.cli import run

    flags = [a.option_strings[0] for a in _parser(run.add_parser)._actions
             if a.option_strings and a.dest in catalog.BY_NAME]
    assert flags[:3] == ["--model", "--variant", "--custom-pipeline"]
    assert flags[-6:] == ["--quantize", "--deepcache", "--fuse-qkv", "--cpu-offload",
                          "--trust-remote-code",
                          "--profile"]
    assert flags.index("--timeout") < flags.index("--compile-cache-dir")


def test_profile_keys_are_the_settings_declared_for_profiles(tmp_path):
    sample = every_setting_changed(tmp_path)
    allowed = {s.name: sample[s.name] for s in catalog.SETTINGS if s.in_profiles}
    path = tmp_path / "all.toml"
    path.write_text(tomli_w.dumps(allowed))
    assert load_profile(str(path)).settings == allowed
    for setting in catalog.SETTINGS:
        if not setting.in_profiles:
            path.write_text(tomli_w.dumps({setting.name: sample[setting.name]}))
            with pytest.raises(ConfigError, match=f"unknown key '{setting.name}'"):
                load_profile(str(path))


def test_baseline_key_holds_exactly_the_image_affecting_settings(tmp_path):
    config = RunConfig(**every_setting_changed(tmp_path)).to_dict()
    key = baseline_key({**config, "sweep_id": "s1", "sweep_cell": "compiler=none"})
    assert list(key) == [s.name for s in catalog.SETTINGS if s.affects_image]
    defaults = catalog.defaults()
    for setting in catalog.SETTINGS:  # each setting moves the key iff it affects the image
        moved = baseline_key({**config, setting.name: defaults[setting.name]}) != key
        assert moved == setting.affects_image, setting.name


def test_sweeps_vary_exactly_the_sweepable_settings_and_read_text_as_the_cli(tmp_path):
    sample = every_setting_changed(tmp_path)
    for setting in catalog.SETTINGS:
        text = _as_text(sample[setting.name])
        if setting.sweepable:
            assert coerce_value(setting.name, text) == catalog.coerce(setting.name, text)
            assert coerce_value(setting.name, text) == sample[setting.name]
        else:
            with pytest.raises(ConfigError, match="cannot sweep") as info:
                coerce_value(setting.name, text)
            assert info.value.field == setting.name
    with pytest.raises(ConfigError, match="grid value 'x' for steps is not a valid int"):
        coerce_value("steps", "x")


def _invalid(setting: catalog.Setting):
    """A value of the right kind that the setting's own rule refuses (None if it has none)."""
    if setting.kind is int and setting.low is not None:
        return setting.low - 1
    if setting.kind is float and setting.check is not None:
        return -1.0
    if setting.kind is dict and setting.check is not None:
        return {"prompt": "x"}
    if setting.name in ("prompt", "negative_prompt"):
        return "\udcff"  # undecodable bytes (a surrogate): refused before loading
    if setting.kind is str and (setting.choices or setting.check is not None):
        return "" if setting.name == "model" else "nope"
    return None


def test_config_errors_name_their_setting_in_field():
    checked = []
    for setting in catalog.SETTINGS:
        bad = _invalid(setting)
        if bad is None:
            continue
        with pytest.raises(ConfigError) as info:
            RunConfig(**{setting.name: bad})
        assert info.value.field == setting.name, (setting.name, str(info.value))
        checked.append(setting.name)
    assert {"steps", "height", "compiler", "scheduler", "device", "strength",
            "guidance_scale", "timeout_s", "extra_call_kwargs", "model", "task"} <= set(checked)
    for kwargs, field in [({"input_image": "no-such.png"}, "input_image"),
                          ({"height": 100}, "height"),
                          ({"custom_pipeline": "x"}, "custom_pipeline"),
                          ({"compiler_config": "{bad"}, "compiler_config"),
                          ({"task": "pix2pix"}, "input_image")]:
        with pytest.raises(ConfigError) as info:
            RunConfig(**kwargs)
        assert info.value.field == field, kwargs
    with pytest.raises(ConfigError, match="steps must be an integer, got 'x'") as info:
        catalog.coerce("steps", "x")
    assert info.value.field == "steps"


def test_text_coercion_per_kind():
    assert catalog.coerce("steps", " 12 ") == 12
    assert catalog.coerce("height", "none") is None
    assert catalog.coerce("guidance_scale", "") is None
    assert catalog.coerce("deepcache", "yes") is True
    assert catalog.coerce("compiler_config", '{"mode": "x"}') == {"mode": "x"}
    assert catalog.coerce("compiler", " none ") == "none"  # a compiler name, not None
    assert catalog.coerce("prompt", " a cat ") == " a cat "
    assert catalog.coerce("lora", "") is None
    assert catalog.coerce("steps", 7) == 7  # typed values pass to RunConfig's checks
    with pytest.raises(ConfigError, match="steps is empty"):
        catalog.coerce("steps", " ")
    with pytest.raises(ConfigError, match="unknown setting 'stepz'"):
        catalog.coerce("stepz", "1")


def test_run_config_fields_are_the_catalog():
    import dataclasses

    fields = dataclasses.fields(RunConfig)
    assert [f.name for f in fields] == [s.name for s in catalog.SETTINGS]
    config = RunConfig()
    for setting in catalog.SETTINGS:
        if setting.name != "task":  # None: inferred from model and input image
            assert getattr(config, setting.name) == setting.default, setting.name
