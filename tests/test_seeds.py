"""The seeds' own systems (configs/seeds/*.yaml): each config is valid and planned by Snakemake,
each seed network has the published parameter counts, and each config trains on phantoms."""

import copy
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, run_env
from medgan import blocks, config, paths, phantoms, prepare, train, variants
from test_zoo import deep_merged

SEEDS = sorted((REPO / "configs" / "seeds").glob("*.yaml"))


def seed_params(path) -> dict:
    return config.validate(deep_merged(yaml.safe_load((REPO / "params.yaml").read_text()),
                                       yaml.safe_load(path.read_text())), str(path))


def seed_experiments(path) -> dict:
    own = yaml.safe_load(path.read_text())["experiments"]
    return {name: exp for name, exp in seed_params(path)["experiments"].items() if name in own}


def test_there_is_one_config_per_seed_system():
    assert {p.stem for p in SEEDS} == {"lits_thesis", "ucla_covid_dcgan", "manipal_brain_mri",
                                       "tf_tutorial_covid", "pix2pix_review"}


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
def test_snakemake_plans_the_seed_config(path):
    plan = subprocess.run(["snakemake", "--dry-run", "--quiet", "rules", "--configfile", str(path), "--cores", "1"],
                          cwd=REPO, env=run_env(), capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "train" in plan.stdout


# (G, D) parameters as the seeds publish them (Keras model.summary: trainable parameters; a
# Keras BatchNorm's moving mean/variance are non-trainable and are buffers in PyTorch).
PUBLISHED = {
    ("manipal_brain_mri", (128, 128)): (27_265_281, 582_785),  # seed 002, figures 4.1 and 4.2
}
# Not printed in the seeds, counted from their layer lists: the thesis' MLP (seed 004, section
# 6.2) and the TensorFlow tutorial's networks (seed 003's blueprint) at 28x28.
FROM_LAYER_LISTS = {
    ("lits_thesis_mlp", (64, 64)): (
        (100 * 256 + 256) + (256 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 4096 + 4096),
        (4096 * 512 + 512) + (512 * 256 + 256) + (256 + 1)),
    ("tf_tutorial", (28, 28)): (
        100 * 7 * 7 * 256 + 2 * 7 * 7 * 256 + 256 * 128 * 25 + 2 * 128 + 128 * 64 * 25 + 2 * 64 + 64 * 25,
        (25 * 64 + 64) + (64 * 128 * 25 + 128) + (7 * 7 * 128 + 1)),
}


@pytest.mark.parametrize("key", [*PUBLISHED, *FROM_LAYER_LISTS], ids=lambda k: f"{k[0]}-{k[1][0]}x{k[1][1]}")
def test_seed_networks_have_the_published_parameter_counts(key):
    name, size = key
    if name == "lits_thesis_mlp":
        G, D = variants.build("vanilla", size, {"z_dim": 100, "hidden_g": [256, 512, 1024],
                                                "hidden_d": [512, 256], "spectral_norm": False})
        counts = (blocks.parameter_count(G), blocks.parameter_count(D))
    else:
        G, D = blocks.build(name, size, 100)
        counts = (blocks.parameter_count(G), blocks.parameter_count(D))
        images = G(torch.randn(2, 100))
        assert images.shape == (2, 1, *size) and D(images).shape == (2,)
    assert counts == {**PUBLISHED, **FROM_LAYER_LISTS}[key]


def test_the_non_square_tutorial_network_is_built_at_336x504():
    G, D = blocks.count_without_building("tf_tutorial", (336, 504))
    assert G == 100 * 84 * 126 * 256 + 2 * 84 * 126 * 256 + 256 * 128 * 25 + 2 * 128 + 128 * 64 * 25 + 2 * 64 + 64 * 25
    assert D == (25 * 64 + 64) + (64 * 128 * 25 + 128) + (84 * 126 * 128 + 1)


def test_every_seed_network_builds_at_its_configs_size():
    built = set()
    for path in SEEDS:
        for name, exp in seed_experiments(path).items():
            settings = config.training_settings(seed_params(path), name)
            if exp["variant"] == "seednet":
                g, d = blocks.count_without_building(settings["hp"]["network"], settings["image_size"])
                assert g > 0 and d > 0
                built.add(settings["hp"]["network"])
    assert built == {"manipal_brain_mri", "tf_tutorial", "ucla_covid_ct"}


def test_keras_same_padding_keeps_sizes_for_odd_and_even_kernels():
    for kernel in (3, 4, 5):
        conv = blocks._keras_same_conv(1, blocks.Layer("conv", 2, kernel, 1))
        assert conv(torch.zeros(1, 1, 10, 14)).shape[-2:] == (10, 14)
        up = blocks._keras_same_up(1, blocks.Layer("up", 2, kernel, 2))
        assert up(torch.zeros(1, 1, 5, 7)).shape[-2:] == (10, 14)


def test_a_size_the_strides_cannot_halve_is_named():
    with pytest.raises(blocks.SizeError, match="divisible by 4"):
        blocks.build("tf_tutorial", (30, 30), 100)


# -- a few training steps of every seed config on phantoms -----------------------------------

TINY_PHANTOMS = {"lits": {"n_cases": 4, "shape": [64, 64, 20]}, "covid_ct": {"n_cases": 6, "image_size": 48},
                 "brain_mri": {"n_cases": 6, "image_size": 48}, "covid_lesion_pairs": {"n_cases": 4, "image_size": 48}}
TINY_TRAIN = {"iterations": 2, "epochs": None, "batch_size": 4, "checkpoint_every": 2, "progress_every": 2,
              "log_every": 1}
SMALL_SIZES = {"seed_tf_tutorial_336x504": [48, 72]}  # the real size holds 277 M parameters


def tiny_seed_params(path) -> dict:
    raw = deep_merged(yaml.safe_load((REPO / "params.yaml").read_text()), yaml.safe_load(path.read_text()))
    own = seed_experiments(path)
    raw["experiments"] = {name: copy.deepcopy(raw["experiments"][name]) for name in own}
    raw["datasets"] = {exp["dataset"]: raw["datasets"][exp["dataset"]] for exp in own.values()}
    raw["export"] = {"experiments": []}  # the demo's exported experiment is not among the seed's own
    for name, exp in raw["experiments"].items():
        exp["train"] = {**exp.get("train", {}), **TINY_TRAIN}
        if name in SMALL_SIZES:
            exp["image_size"] = SMALL_SIZES[name]
    for spec in raw["phantoms"].values():
        spec.update(TINY_PHANTOMS[spec["kind"]])
    return config.validate(raw, str(path))


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
def test_each_seed_config_trains_a_few_steps_on_phantoms(path, project):
    params = tiny_seed_params(path)
    for name, spec in params["phantoms"].items():
        if any(ds["raw"] == paths.RAW.format(name=name) for ds in params["datasets"].values()):
            phantoms.generate(spec["kind"], paths.path(paths.RAW, name=name), spec, params["seed"])
    for name, ds in params["datasets"].items():
        prepare.prepare_dataset(name, ds, paths.path(paths.SLICES, dataset=name), params["seed"])
    for name in params["experiments"]:
        trainer = train.Trainer(params, name)
        trainer.run()
        log = pd.read_csv(paths.path(paths.TRAIN_LOG, experiment=name))
        assert list(log["step"]) == [1, 2] and np.isfinite(log[["loss_d", "loss_g"]].to_numpy()).all()
        G, model = train.load_generator(paths.path(paths.MODEL, experiment=name))
        assert model["step"] == 2
        if not variants.VARIANTS[model["variant"]].paired:
            assert G(torch.randn(2, model["hp"]["z_dim"])).shape == (2, 1, *trainer.settings["image_size"])
        # g_steps: G's optimiser stepped g_steps times per batch
        adam_steps = next(iter(trainer.family.opt_g.state.values()))["step"]
        assert int(adam_steps) == 2 * trainer.train_cfg["g_steps"]


def test_fid_at_the_thesis_n_is_reported_with_the_spread_of_its_draws():
    from types import SimpleNamespace

    from medgan.metrics import fid, fid_small

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))  # one distribution
    weights = SimpleNamespace(record=lambda: {"file": "test"})
    features = SimpleNamespace(inception_available=lambda: None, inception_weights=lambda: weights,
                               get=lambda kind, which: which)
    inp = SimpleNamespace(real=real, fake=fake, features=features, seed=0,
                          settings={"fid_small_n": 29, "bootstrap": 50})
    entry = fid_small.compute(inp)["fid_small"]
    full = fid.frechet(real, fake)
    assert entry["n_real"] == entry["n_fake"] == 29
    assert entry["ci_low"] > 3 * full  # 29 vs 29 of one distribution is far from 0 ...
    assert entry["ci_high"] - entry["ci_low"] > full  # ... and moves with the draw
    assert seed_params(REPO / "configs/seeds/lits_thesis.yaml")["evaluate"]["fid_small_n"] == 29
