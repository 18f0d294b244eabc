"""Workflow config validation: unknown keys and bad values are named with what is allowed."""
from __future__ import annotations

import pytest

from replicate.configuration import ConfigError, deep_merge, load_config, validate_config


def test_shipped_config_is_valid_and_off_gpu_by_default():
    config = load_config()
    assert config["gpu"] is False
    assert all(v == "" for v in config["paths"]["checkpoints"].values())
    assert all(v == "" for v in config["paths"]["datasets"].values())


def test_unknown_top_level_key_names_it_and_the_allowed_keys(config):
    config["gpus"] = True
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    msg = str(err.value)
    assert "'gpus'" in msg and "allowed keys" in msg and "'gpu'" in msg and "'paths'" in msg


def test_unknown_nested_key_names_its_section(config):
    config["paths"]["checkpoints"]["llava-ov-7b"] = "/x"
    with pytest.raises(ConfigError, match=r"\['llava-ov-7b'\] in paths.checkpoints; allowed keys: .*llava-onevision-7b"):
        validate_config(config)


def test_bad_enum_value_names_the_key_and_the_allowed_values(config):
    config["analytic"]["budget_rounding"] = "floor"
    with pytest.raises(ConfigError, match=r"analytic.budget_rounding: 'floor' is not allowed; allowed values: "
                                          r"\['per_frame_ceil', 'global_round'\]"):
        validate_config(config)


def test_bad_model_in_grid(config):
    config["analytic"]["grid"][0]["models"] = ["gpt-4v"]
    with pytest.raises(ConfigError, match=r"analytic.grid.0.models.0: 'gpt-4v' is not allowed"):
        validate_config(config)


def test_wrong_type(config):
    config["gpu"] = "yes"
    with pytest.raises(ConfigError, match=r"config key gpu: 'yes' is not of type 'boolean'"):
        validate_config(config)


def test_deep_merge_overrides_leaves_and_keeps_siblings():
    base = {"paths": {"checkpoints": {"a": "", "b": ""}}, "gpu": False}
    merged = deep_merge(base, {"paths": {"checkpoints": {"a": "/ckpt"}}, "gpu": True})
    assert merged == {"paths": {"checkpoints": {"a": "/ckpt", "b": ""}}, "gpu": True}
    assert base["paths"]["checkpoints"]["a"] == ""  # input untouched


def test_command_line_booleans_are_coerced():
    from replicate.configuration import coerce_cli_values

    cfg = coerce_cli_values({"gpu": "true", "tiers": {"paper": "False", "cpu": True}})
    assert cfg == {"gpu": True, "tiers": {"paper": False, "cpu": True}}


# ---------------------------------------------------------------- one source of defaults: the schema
DATA = __import__("pathlib").Path(__file__).parent / "data"


def _config_yaml_before():
    """replicate/config.yaml as it spelled out every value at commit 52200ad (before the schema
    became the one source of defaults)."""
    import yaml

    return yaml.safe_load((DATA / "config_yaml_at_52200ad.yaml").read_text())


#: sections added to the schema after that commit, with their defaults (all else must be unchanged)
ADDED_SINCE_SNAPSHOT = {"cpu": {"video": {"methods": ["vanilla", "tango", "holitom", "visionzip"],
                                          "retentions": [0.10, 0.25, 0.50]}},
                        "paths": {"gpu_measurements": "replicate/measured"},
                        # the 72B over several GPUs (issue 23)
                        "paper": {"gpu_memory_gb": 80, "device_map": "auto", "offload_dir": ""}}
#: defaults changed since that commit, and why
CHANGED_SINCE_SNAPSHOT = {"paper": {"max_new_tokens": None}}  # each evaluation protocol's own (issue 23)
#: top-level sections added since (issue 26: the op-count benchmark's)
SECTIONS_ADDED_SINCE_SNAPSHOT = {"reduction_ops": {"dim": None, "repeats": 1, "threads": 2}}


def test_an_empty_config_resolves_to_what_config_yaml_spelled_out():
    from replicate.configuration import with_defaults

    expected = _config_yaml_before()
    for section, added in ADDED_SINCE_SNAPSHOT.items():
        assert not set(added) & set(expected[section])
        expected[section].update(added)
    for section, changed in CHANGED_SINCE_SNAPSHOT.items():
        assert set(changed) <= set(expected[section])
        expected[section].update(changed)
    assert not set(SECTIONS_ADDED_SINCE_SNAPSHOT) & set(expected)
    expected.update(SECTIONS_ADDED_SINCE_SNAPSHOT)
    assert with_defaults({}) == expected
    assert load_config() == expected  # the shipped file sets nothing that differs


def test_defaults_fill_around_the_keys_a_config_sets():
    from replicate.configuration import with_defaults

    before = _config_yaml_before()
    cfg = with_defaults({"efficiency": {"cpu": {"frames": 8}}, "holitom": {"cpu": {"sweeps": False}},
                         "paths": {"checkpoints": {"llava-onevision-7b": "/data/ov"}}})
    assert cfg["efficiency"]["cpu"] == {**before["efficiency"]["cpu"], "frames": 8}
    assert cfg["efficiency"]["gpu"] == before["efficiency"]["gpu"]  # same $def, its own defaults
    assert cfg["holitom"]["cpu"] == {**before["holitom"]["cpu"], "sweeps": False}
    assert cfg["paths"]["checkpoints"]["llava-onevision-7b"] == "/data/ov"
    assert cfg["paths"]["checkpoints"]["molmo2-4b"] == "" and cfg["paths"]["datasets"]["mlvu"] == ""
    validate_config(cfg)


def test_holitom_settings_take_the_schema_defaults():
    from replicate.holitom_tables import settings

    h = settings({"holitom": {"k_sweep": [3]}})
    assert h["k_sweep"] == [3] and h["r_sweep"] == _config_yaml_before()["holitom"]["r_sweep"]
    assert h["cpu"] == _config_yaml_before()["holitom"]["cpu"]


def test_the_snakefiles_config_checks_import_no_torch(tmp_path):
    """prepare_config runs whenever the Snakefile is parsed (every job): with a torch that refuses
    to import it still completes when the config sets no method options of its own."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('torch imported by the config checks')\n")
    code = ("from replicate.configuration import prepare_config\n"
            "cfg = prepare_config({'gpu': False}, argv=[])\n"
            "print(cfg['cpu']['n_samples'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo,
                         env={"PYTHONPATH": f"{tmp_path}:{repo}", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "1000"


def test_default_method_options_are_valid_and_set_ones_are_checked():
    """What prepare_config skips (the schema's option blocks) holds here; a block a config sets is
    checked against the method's own Config."""
    from replicate.configuration import prepare_config, validate_method_options

    validate_method_options(load_config())
    with pytest.raises(ConfigError, match=r"cpu.options.holitom: unknown option\(s\) \['bogus'\]"):
        prepare_config({"cpu": {"options": {"holitom": {"bogus": 1}}}}, argv=[])


@pytest.mark.parametrize("config", [{"embedded": {"n_samples": 4}}, {"embedded": {}, "cpu": {"n_samples": 4}}])
def test_a_renamed_key_names_its_new_name(config, tmp_path):
    """The cpu tier's section is ``cpu``; a config (file, --config or Python) that still says
    ``embedded`` is rejected with the new name, not only "unknown key"."""
    import yaml
    from replicate.configuration import prepare_config

    with pytest.raises(ConfigError, match=r"'embedded' was renamed to 'cpu'.*cpu\.<key>"):
        prepare_config(dict(config), argv=[])
    with pytest.raises(ConfigError, match=r"'embedded' was renamed to 'cpu'"):
        validate_config(config)
    path = tmp_path / "user.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"'embedded' was renamed to 'cpu'"):
        load_config(path)

