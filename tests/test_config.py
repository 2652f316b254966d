import subprocess

import pytest
import yaml

from medgan import cli, config
from conftest import REPO, tiny_params


def test_repository_params_are_valid_and_defaults_filled():
    params = config.load(REPO / "params.yaml")
    assert params["evaluate"]["inception"] in {"auto", "required", "off"}
    assert params["train"]["diffaugment"]  # a default filled in from the schema
    for exp in params["experiments"].values():
        assert exp["dataset"] in params["datasets"]


def test_misspelled_key_fails_with_its_name(tmp_path):
    raw = tiny_params()
    raw["train"]["iteratons"] = raw["train"].pop("iterations")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError, match="iteratons"):
        config.load(path)


def test_wrong_type_names_the_key(tmp_path):
    raw = tiny_params()
    raw["train"]["batch_size"] = "many"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError, match=r"train\.batch_size"):
        config.load(path)


def test_unknown_dataset_reference_is_reported(tmp_path):
    raw = tiny_params()
    raw["experiments"]["tiny_dcgan_tumour"]["dataset"] = "lits_typo"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError, match="lits_typo"):
        config.load(path)


def test_baseline_classes_must_cover_every_experiment_and_narrow_the_floor(tmp_path):
    from medgan import evaluate

    raw, path = tiny_params(), tmp_path / "params.yaml"
    raw["evaluate"]["baseline_classes"] = ["tumour", "nope"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert "baseline_classes[1]': 'nope' is no dataset's class" in str(err.value)
    assert "lacks 'healthy', the class of experiment 'tiny_dcgan_healthy'" in str(err.value)
    del raw["experiments"]["tiny_dcgan_healthy"]
    raw["evaluate"]["baseline_classes"] = ["tumour"]
    path.write_text(yaml.safe_dump(raw))
    assert evaluate.baseline_classes(config.load(path), "tiny") == ["tumour"]
    raw["evaluate"]["baseline_classes"] = None
    path.write_text(yaml.safe_dump(raw))
    assert evaluate.baseline_classes(config.load(path), "tiny") == ["healthy", "tumour", "all"]


def test_the_verdict_defaults_to_kid_and_a_metric_it_names_need_not_be_computed(tmp_path):
    """The verdict is the summary's business: trimming evaluate.metrics never stops a run; summary.md
    says why it has no verdict (tests/test_summary_answer.py)."""
    raw, path = tiny_params(), tmp_path / "params.yaml"
    raw["evaluate"]["metrics"] = ["fid"]
    path.write_text(yaml.safe_dump(raw))
    assert config.load(path)["evaluate"]["verdict"] == {"rank_by": "kid", "floor_by": "kid"}
    raw["evaluate"]["verdict"] = {"rank_by": "frd"}
    path.write_text(yaml.safe_dump(raw))
    assert config.load(path)["evaluate"]["verdict"] == {"rank_by": "frd", "floor_by": "kid"}
    raw["evaluate"]["verdict"] = {"rank_by": "kld"}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError, match=r"evaluate\.verdict\.rank_by"):
        config.load(path)


def test_cli_exits_nonzero_naming_the_key(tmp_path, capsys):
    raw = tiny_params()
    raw["sede"] = raw.pop("seed")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert cli.main(["prepare", "tiny", "--params", str(path)]) != 0
    assert "sede" in capsys.readouterr().err


def test_every_verb_has_help():
    for verb in cli.VERBS:
        out = subprocess.run(["medgan", verb, "--help"], capture_output=True, text=True,
                             env=__import__("conftest").run_env())
        assert out.returncode == 0 and "usage: medgan " + verb in out.stdout
    listing = subprocess.run(["medgan", "--help"], capture_output=True, text=True,
                             env=__import__("conftest").run_env()).stdout
    assert all(verb in listing for verb in cli.VERBS)


@pytest.mark.parametrize("section, key, value", [
    ("train", "iterations", -5), ("train", "batch_size", -4), ("hp", "lr", -0.1),
    ("hp", "loss", "wasserstein"), ("train", "diffaugment", ["rotate"]),
])
def test_experiment_override_values_are_validated_naming_the_key(tmp_path, monkeypatch, capsys, section, key,
                                                                  value):
    monkeypatch.chdir(tmp_path)
    raw = tiny_params()
    raw["experiments"]["tiny_dcgan_tumour"][section] = {key: value}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert cli.main(["train", "tiny_dcgan_tumour", "--params", str(path)]) == 2
    assert f"experiments.tiny_dcgan_tumour.{section}.{key}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


def test_override_of_a_nested_setting_keeps_its_other_keys():
    raw = tiny_params()
    raw["experiments"]["tiny_dcgan_tumour"]["train"] = {"divergence": {"action": "rollback"}}
    settings = config.training_settings(config.validate(raw), "tiny_dcgan_tumour")
    assert settings["train"]["divergence"] == {"action": "rollback", "window": 200, "collapse_std": 0.02,
                                               "max_rollbacks": 3, "mode_collapse": "warn", "spread_min": 0.25}
    raw["experiments"]["tiny_dcgan_tumour"]["train"] = {"divergence": {"window": 0}}
    with pytest.raises(config.ConfigError, match=r"experiments\.tiny_dcgan_tumour\.train\.divergence\.window"):
        config.validate(raw)


def test_the_workflow_schema_is_the_package_schema():
    assert (REPO / "workflow/schemas/params.schema.yaml").read_bytes() == \
        (REPO / "src/medgan/params.schema.yaml").read_bytes()


def test_yaml_anchor_shared_by_two_variants_gets_each_ones_defaults():
    raw = yaml.safe_load("""
seed: 0
datasets: {d: {kind: volumes, raw: r}}
variants:
  ddpm_class: &unet {channels: [16, 32], attention: [false, true]}
  ddpm_mask: *unet
experiments: {e: {dataset: d, variant: ddpm_mask}}
""")
    params = config.validate(raw)  # cond_drop (ddpm_class only) must not leak into ddpm_mask
    assert "cond_drop" in params["variants"]["ddpm_class"] and "cond_drop" not in params["variants"]["ddpm_mask"]


@pytest.mark.parametrize("section", ["datasets", "phantoms", "experiments"])
@pytest.mark.parametrize("name", ["../x", "x/y", "-rf", "a b", "x;rm"])
def test_names_that_would_escape_a_folder_or_split_a_command_are_refused(section, name):
    raw = tiny_params()
    entry = raw[section][next(iter(raw[section]))]
    raw[section][name] = entry
    with pytest.raises(config.ConfigError, match=rf"at '{section}'.*rename it"):
        config.validate(raw)


def test_a_dataset_named_dot_dot_is_refused_by_the_cli_before_anything_is_written(tmp_path, monkeypatch, capsys):
    raw = tiny_params()
    raw["datasets"]["../x"] = raw["datasets"].pop("tiny")
    for exp in raw["experiments"].values():
        exp["dataset"] = "../x"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["prepare", "../x"]) == 2
    assert "'../x' does not match" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("where, value", [
    (("datasets", "tiny", "image_size"), [64000, 64000]),  # a typo for 64: a 4-GB 8-bit slice
    (("phantoms", "tiny", "shape"), [64, 64, 20000]),
])
def test_sizes_beyond_any_scan_are_refused_before_anything_allocates(where, value):
    raw = tiny_params()
    raw[where[0]][where[1]][where[2]] = value
    with pytest.raises(config.ConfigError, match=rf"at '{'.'.join(where)}\.\d'.*maximum"):
        config.validate(raw)


@pytest.mark.parametrize("make, says", [
    (lambda p: p.mkdir(), "is a folder, not a file"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00binary"), "cannot be read as text"),
])
def test_params_env_var_pointing_at_a_folder_or_binary_is_one_clear_error(tmp_path, monkeypatch, capsys, make, says):
    target = tmp_path / "p.yaml"
    make(target)
    monkeypatch.setenv(config.PARAMS_ENV, str(target))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["summarize"]) == 2
    err = capsys.readouterr().err
    assert says in err and f"${config.PARAMS_ENV}" in err
