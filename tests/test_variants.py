"""Every GAN variant on the one engine: trains, samples, resumes, and is guarded."""

import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from medgan import config, paths, sample, train
from conftest import run_env, tiny_params

VARIANT_EXPERIMENTS = {
    "v_vanilla": {"dataset": "tiny", "variant": "vanilla", "class": "tumour"},
    "v_dcgan_nonsquare": {"dataset": "tiny", "variant": "dcgan", "class": "healthy", "image_size": [32, 48]},
    "v_cgan": {"dataset": "tiny", "variant": "cgan"},
    "v_wgan": {"dataset": "tiny", "variant": "wgan_gp", "class": "tumour"},
    "v_dcgan_options": {"dataset": "tiny", "variant": "dcgan", "class": "tumour",
                        "hp": {"ema": 0.9, "spectral_norm": True, "r1_gamma": 1.0, "loss": "hinge",
                               "minibatch_std": True}},
    "v_lsgan": {"dataset": "tiny", "variant": "dcgan", "class": "tumour", "hp": {"loss": "lsgan"}},
}
SMALL = {"vanilla": {"z_dim": 8, "hidden_g": [16, 16], "hidden_d": [16]},
         "dcgan": {"z_dim": 8, "ngf": 4, "ndf": 4}, "cgan": {"z_dim": 8, "ngf": 4, "ndf": 4, "embed_dim": 2},
         "wgan_gp": {"z_dim": 8, "ngf": 4, "ndf": 4, "n_critic": 2}, "pix2pix": {"ngf": 4, "ndf": 4}}


@pytest.fixture
def variant_params(prepared):
    raw = tiny_params(experiments=VARIANT_EXPERIMENTS, variants=SMALL)
    raw["train"].update(iterations=4, checkpoint_every=2, log_every=1, progress_every=2)
    raw["sample"] = {"n": 6, "grid_columns": 3, "interpolation_steps": 4, "interpolation_pairs": 1}
    return config.validate(raw)


@pytest.mark.parametrize("name", list(VARIANT_EXPERIMENTS))
def test_variant_trains_with_finite_losses_and_samples(variant_params, name):
    train.train(variant_params, name)
    log = pd.read_csv(paths.path(paths.TRAIN_LOG, experiment=name))
    assert len(log) == 4 and np.isfinite(log[["loss_d", "loss_g", "penalty"]].to_numpy()).all()
    settings = config.training_settings(variant_params, name)
    G, model = train.load_generator(paths.path(paths.MODEL, experiment=name))
    assert model["image_size"] == settings["image_size"]
    sample.sample(variant_params, name)
    index = pd.read_csv(paths.path(paths.SAMPLES, experiment=name) / "samples.csv")
    first = Image.open(paths.path(paths.SAMPLES, experiment=name) / index["path"][0])
    assert first.size == tuple(reversed(settings["image_size"]))
    assert paths.path(paths.INTERPOLATION, experiment=name).exists()
    assert paths.path(paths.PROGRESS, experiment=name).exists()


def test_wgan_logs_a_gradient_penalty(variant_params):
    train.train(variant_params, "v_wgan")
    assert (pd.read_csv(paths.path(paths.TRAIN_LOG, experiment="v_wgan"))["penalty"] > 0).all()


def test_cgan_samples_every_requested_class(variant_params):
    train.train(variant_params, "v_cgan")
    sample.sample(variant_params, "v_cgan")
    index = pd.read_csv(paths.path(paths.SAMPLES, experiment="v_cgan") / "samples.csv")
    assert index.groupby("class").size().to_dict() == {"healthy": 6, "tumour": 6}
    G, model = train.load_generator(paths.path(paths.MODEL, experiment="v_cgan"))
    z = torch.randn(1, 8)
    with torch.no_grad():
        assert not torch.equal(G(z, torch.tensor([0])), G(z, torch.tensor([1])))  # the label matters


def test_interpolation_endpoints_and_slerp_norm():
    a, b = torch.randn(16), torch.randn(16)
    assert torch.allclose(sample.slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(sample.slerp(a, b, 1.0), b, atol=1e-5)
    assert torch.allclose(sample.lerp(a, b, 0.5), (a + b) / 2)
    u, v = a / a.norm(), b / b.norm()
    assert sample.slerp(u, v, 0.3).norm() == pytest.approx(1.0, abs=1e-5)


# -- pix2pix on a paired dataset ------------------------------------------------------------

def _paired_dataset(root, n_cases=4, per_case=4, size=32):
    rows, rng = [], np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for case in range(n_cases):
        split = ["train", "train", "val", "test"][case]
        for k in range(per_case):
            cy, cx, r = rng.uniform(8, 24, 2).tolist() + [rng.uniform(3, 7)]
            mask = (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(np.uint8)
            image = np.clip(60 + 120 * mask + rng.normal(0, 5, mask.shape), 0, 255).astype(np.uint8)
            rel, rel_mask = f"{split}/lesion/{case}_{k:04d}.png", f"masks/{split}/lesion/{case}_{k:04d}.png"
            for path, array in ((rel, image), (rel_mask, mask)):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / path)
            rows.append({"case": str(case), "split": split, "class": "lesion", "path": rel, "mask_path": rel_mask})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


@pytest.fixture
def paired_params(project):
    _paired_dataset(paths.path(paths.SLICES, dataset="pairs"))
    raw = tiny_params(variants=SMALL)
    raw["datasets"]["pairs"] = {"kind": "paired_folders", "raw": "unused", "image_size": [32, 32], "classes": ["lesion"]}
    raw["experiments"] = {"p2p": {"dataset": "pairs", "variant": "pix2pix"}}
    raw["train"].update(iterations=3, checkpoint_every=3, log_every=1)
    raw["sample"] = {"n": 10, "grid_columns": 3, "interpolation_steps": 3}
    return config.validate(raw)


def test_pix2pix_maps_each_test_mask_to_an_image_of_its_size(paired_params):
    train.train(paired_params, "p2p")
    log = pd.read_csv(paths.path(paths.TRAIN_LOG, experiment="p2p"))
    assert (log["l1"] > 0).all() and np.isfinite(log["loss_g"]).all()
    sample.sample(paired_params, "p2p")
    folder = paths.path(paths.SAMPLES, experiment="p2p")
    index = pd.read_csv(folder / "samples.csv")
    assert set(index["pair"]) == {f"3_{k:04d}" for k in range(4)}  # the held-out test case
    for pair, rows in index.groupby("pair"):
        assert sorted(rows["kind"]) == ["fake", "mask", "real"]
        sizes = {Image.open(folder / p).size for p in rows["path"]}
        assert sizes == {(32, 32)}


def test_pix2pix_without_masks_says_so(project):
    root = paths.path(paths.SLICES, dataset="pairs")
    _paired_dataset(root)
    pd.read_csv(root / "manifest.csv").drop(columns="mask_path").to_csv(root / "manifest.csv", index=False)
    raw = tiny_params(variants=SMALL)
    raw["datasets"]["pairs"] = {"kind": "paired_folders", "raw": "unused", "image_size": [32, 32], "classes": ["lesion"]}
    raw["experiments"] = {"p2p": {"dataset": "pairs", "variant": "pix2pix"}}
    with pytest.raises(config.ConfigError, match="mask_path"):
        train.Trainer(config.validate(raw), "p2p")


# -- divergence guard -----------------------------------------------------------------------

def test_guard_stops_on_an_injected_nan(prepared, monkeypatch):
    trainer = train.Trainer(prepared, "tiny_dcgan_tumour")
    real_step = trainer.train_step
    calls = {"n": 0}

    def poisoned():
        calls["n"] += 1
        metrics = real_step()
        return {**metrics, "loss_d": float("nan")} if calls["n"] == 3 else metrics

    monkeypatch.setattr(trainer, "train_step", poisoned)
    with pytest.raises(train.DivergenceError, match="step 3: a non-finite loss"):
        trainer.run()
    assert not paths.path(paths.MODEL, experiment="tiny_dcgan_tumour").exists()


def _collapsed(trainer):
    """Make G emit a constant image and D see through it at once."""
    with torch.no_grad():
        last = [m for m in trainer.G.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
        last.weight.zero_()
    real_step = trainer.train_step
    return lambda: {**real_step(), "d_accuracy": 1.0}


def test_guard_stops_on_an_injected_collapse(prepared, monkeypatch):
    prepared["train"]["divergence"].update(action="stop", window=3, collapse_std=0.02, mode_collapse="off")
    trainer = train.Trainer(prepared, "tiny_dcgan_tumour")
    monkeypatch.setattr(trainer, "train_step", _collapsed(trainer))
    monkeypatch.setattr(trainer.family, "generator_step", lambda batch, fake: {"loss_g": 0.0, "l1": 0.0, "fake_std": 0.0})
    with pytest.raises(train.DivergenceError, match="collapse"):
        trainer.run()


def test_guard_rolls_back_to_the_last_checkpoint_then_gives_up(prepared, monkeypatch, capsys):
    prepared["train"].update(iterations=8, checkpoint_every=2)
    prepared["train"]["divergence"].update(action="rollback", window=1, collapse_std=0.02, max_rollbacks=2)
    trainer = train.Trainer(prepared, "tiny_dcgan_tumour")
    real_step = trainer.train_step
    monkeypatch.setattr(trainer, "train_step",
                        lambda: {**real_step(), **({"loss_g": float("inf")} if trainer.step >= 3 else {})})
    with pytest.raises(train.DivergenceError, match="rollbacks exhausted"):
        trainer.run()
    out = capsys.readouterr().out
    assert "rolled back to step 2 (rollback 1/2)" in out and "rollback 2/2" in out


def _constant_generator(trainer):
    with torch.no_grad():
        last = [m for m in trainer.G.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
        last.weight.zero_()
        last.weight.requires_grad_(False)  # stays collapsed: every noise vector gives one image


def test_spread_is_zero_for_copies_and_one_for_the_real_batch():
    real = torch.rand(8, 1, 16, 16)
    assert train.sample_spread(real, real) == pytest.approx(1.0)
    assert train.sample_spread(real[:1].repeat(8, 1, 1, 1), real) == pytest.approx(0.0, abs=1e-6)


def test_mode_collapse_is_flagged_in_log_and_model_and_training_goes_on(prepared, capsys):
    prepared["train"]["divergence"].update(window=2, mode_collapse="warn")
    trainer = train.Trainer(prepared, "tiny_dcgan_tumour")
    _constant_generator(trainer)
    trainer.run()
    log = pd.read_csv(paths.path(paths.TRAIN_LOG, experiment="tiny_dcgan_tumour"), keep_default_na=False)
    flagged = log[log["guard"] == "mode_collapse"]
    assert list(flagged["step"]) == [2] and (log["spread"].astype(float) < 0.05).all()
    model = torch.load(paths.path(paths.MODEL, experiment="tiny_dcgan_tumour"), weights_only=False)
    assert [e["step"] for e in model["guard_events"]] == [2] and model["step"] == 6
    assert "WARNING tiny_dcgan_tumour: step 2: mode collapse" in capsys.readouterr().out


def test_mode_collapse_can_stop_training(prepared):
    prepared["train"]["divergence"].update(window=2, mode_collapse="stop")
    trainer = train.Trainer(prepared, "tiny_dcgan_tumour")
    _constant_generator(trainer)
    with pytest.raises(train.DivergenceError, match="step 2: mode collapse"):
        trainer.run()


def test_healthy_start_is_not_flagged(prepared):
    prepared["train"]["divergence"].update(window=2, mode_collapse="stop")
    trainer = train.Trainer(prepared, "tiny_dcgan_tumour")
    trainer.run()
    assert trainer.guard.events == [] and min(row["spread"] for row in trainer.log) > 0.2


def test_cpu_training_is_fp32_unless_asked():
    cpu = torch.device("cpu")
    assert not train.uses_bf16("auto", cpu) and not train.uses_bf16("fp32", cpu)
    assert train.uses_bf16("bf16", cpu) and train.uses_bf16("auto", torch.device("cuda", 0))


# -- multi-process (DDP, gloo on CPU) -------------------------------------------------------

@pytest.mark.slow
def test_ddp_two_cpu_processes_train_and_only_rank0_writes(prepared, project):
    env = {**run_env(), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["medgan", "train", "tiny_dcgan_tumour", "--nproc", "2"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch.distributed.run" in result.stderr and "--nproc_per_node=2" in result.stderr
    assert paths.path(paths.MODEL, experiment="tiny_dcgan_tumour").exists()
    written = sorted(p.name for p in paths.path(paths.CHECKPOINTS, experiment="tiny_dcgan_tumour").iterdir())
    assert written == ["last.pt", "previous.pt"]  # one writer: no other checkpoint, no temp files left behind
    assert result.stderr.count("medgan train tiny_dcgan_tumour done") == 3  # two ranks + the launcher
