"""The DDPM family (MONAI) on the one training loop: each conditioning trains, resumes exactly,
samples deterministically; class-conditional yields the requested classes; mask-conditional
writes the pix2pix triplets that `evaluate` scores with the paired metrics."""

import numpy as np
import pandas as pd
import pytest
import torch

from medgan import config, evaluate, modelio, paths, sample, train, variants
from conftest import tiny_params
from test_variants import _paired_dataset

TINY_UNET = {"channels": [8, 16], "attention": [False, True], "head_channels": 8, "norm_groups": 4,
             "timesteps": 20, "progress_ddim_steps": 2, "ema": 0.9}
DDPM_VARIANTS = {"ddpm": TINY_UNET, "ddpm_class": TINY_UNET, "ddpm_mask": TINY_UNET}
EXPERIMENTS = {"d_none": {"dataset": "tiny", "variant": "ddpm", "class": "tumour", "image_size": [16, 16]},
               "d_class": {"dataset": "tiny", "variant": "ddpm_class", "image_size": [16, 16]},
               "d_mask": {"dataset": "pairs", "variant": "ddpm_mask"}}


def _diffusion_params(raw):
    raw["variants"] = {name: dict(hp) for name, hp in DDPM_VARIANTS.items()}
    raw["datasets"]["pairs"] = {"kind": "volumes", "raw": "unused", "image_size": [32, 32], "classes": ["lesion"]}
    raw["experiments"] = EXPERIMENTS
    raw["train"].update(iterations=4, checkpoint_every=2, log_every=1, progress_every=2)
    raw["sample"] = {"n": 4, "grid_columns": 2, "interpolation_steps": 3, "interpolation_pairs": 1,
                     "ddim_steps": 3, "guidance_scale": 2.0}
    return config.validate(raw)


@pytest.fixture
def ddpm_params(prepared):
    _paired_dataset(paths.path(paths.SLICES, dataset="pairs"))
    return _diffusion_params(tiny_params())


def _model_weights(name):
    return torch.load(paths.path(paths.MODEL, experiment=name), weights_only=True)["G"]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_ddpm_trains_and_resumes_exactly(ddpm_params, name):
    train.train(ddpm_params, name)
    straight = _model_weights(name)
    log = pd.read_csv(paths.path(paths.TRAIN_LOG, experiment=name))
    assert list(log.columns) == ["step", "loss", "spread", "guard", "lr"] and list(log["step"]) == [1, 2, 3, 4]
    assert np.isfinite(log["loss"]).all() and (log["loss"] > 0).all()
    assert log["spread"].notna().tolist() == [False, True, False, True]  # measured on progress grids
    assert paths.path(paths.PROGRESS, experiment=name).exists()

    modelio.remove_checkpoints(paths.path(paths.CHECKPOINTS, experiment=name))
    paths.path(paths.MODEL, experiment=name).unlink()
    train.Trainer(ddpm_params, name).run(stop_after=3)  # "killed" after 3 of 4 steps
    assert not paths.path(paths.MODEL, experiment=name).exists()
    train.Trainer(ddpm_params, name).run()
    resumed = _model_weights(name)
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    pd.testing.assert_frame_equal(log, pd.read_csv(paths.path(paths.TRAIN_LOG, experiment=name)))


def _sampled(name):
    folder = paths.path(paths.SAMPLES, experiment=name)
    index = pd.read_csv(folder / "samples.csv", dtype={"pair": str})
    return index, [(folder / p).read_bytes() for p in index["path"]]


def test_ddpm_samples_deterministically_and_reports_speed(ddpm_params, capsys):
    train.train(ddpm_params, "d_none")
    sample.sample(ddpm_params, "d_none")
    first_index, first = _sampled("d_none")
    strip = paths.path(paths.INTERPOLATION, experiment="d_none").read_bytes()
    sample.sample(ddpm_params, "d_none")
    again_index, again = _sampled("d_none")
    assert len(first) == 4 and first == again and len(set(first)) == 4  # same seed, same images; all differ
    assert strip == paths.path(paths.INTERPOLATION, experiment="d_none").read_bytes()
    assert "images/s" in capsys.readouterr().out


def test_slerp_between_noises_under_ddim_keeps_the_endpoints(ddpm_params):
    train.train(ddpm_params, "d_none")
    G, model = train.load_generator(paths.path(paths.MODEL, experiment="d_none"))
    sampler = variants.for_sampling(G, model, ddpm_params["sample"], 0)
    a, b = torch.randn(2, sampler.z_dim).unbind()
    ends = sampler(torch.stack([a, b]))
    row = sampler(torch.stack([sample.slerp(a, b, t) for t in (0.0, 0.5, 1.0)]))
    assert torch.allclose(row[0], ends[0], atol=1e-4) and torch.allclose(row[2], ends[1], atol=1e-4)
    assert not torch.allclose(row[1], ends[0], atol=1e-2)


def test_ddpm_class_yields_every_requested_class_and_the_label_matters(ddpm_params):
    train.train(ddpm_params, "d_class")
    sample.sample(ddpm_params, "d_class")
    index, _ = _sampled("d_class")
    assert index.groupby("class").size().to_dict() == {"healthy": 4, "tumour": 4}
    G, model = train.load_generator(paths.path(paths.MODEL, experiment="d_class"))
    assert G.unet.class_embedding.num_embeddings == 3  # two classes + the "no class" of guidance
    z = torch.randn(1, 16 * 16).repeat(2, 1)
    guided = variants.for_sampling(G, model, ddpm_params["sample"], 0)
    plain = variants.for_sampling(G, model, {**ddpm_params["sample"], "guidance_scale": 1.0}, 0)
    labels = torch.tensor([0, 1])
    by_label = guided(z, labels)
    assert not torch.allclose(by_label[0], by_label[1])
    assert not torch.allclose(by_label, plain(z, labels))  # guidance changes the images


def test_ddpm_mask_writes_triplets_that_evaluate_scores_with_paired_metrics(ddpm_params):
    train.train(ddpm_params, "d_mask")
    sample.sample(ddpm_params, "d_mask")
    index, files = _sampled("d_mask")
    assert set(index["pair"]) == {f"3_{k:04d}" for k in range(4)}  # the held-out test case
    assert all(sorted(rows["kind"]) == ["fake", "mask", "real"] for _, rows in index.groupby("pair"))
    sample.sample(ddpm_params, "d_mask")
    assert _sampled("d_mask")[1] == files  # the sampler's noise is seeded
    ddpm_params["evaluate"].update(metrics=["paired"], bootstrap=5)
    scores = evaluate.evaluate(ddpm_params, "d_mask")["metrics"]
    assert 0 < scores["paired_psnr_image"]["value"] < 100 and scores["paired_ssim_image"]["n_fake"] == 4


def test_ddpm_nan_loss_stops_training(ddpm_params, monkeypatch):
    trainer = train.Trainer(ddpm_params, "d_none")
    real_step = trainer.train_step
    poisoned = lambda: {**real_step(), **({"loss": float("nan")} if trainer.step == 1 else {})}  # noqa: E731
    monkeypatch.setattr(trainer, "train_step", poisoned)
    with pytest.raises(train.DivergenceError, match="step 2: a non-finite loss"):
        trainer.run()


def test_ddpm_size_the_unet_cannot_halve_is_a_config_error(ddpm_params):
    ddpm_params["experiments"]["d_none"]["image_size"] = [17, 17]
    with pytest.raises(config.ConfigError, match="divisible by 2"):
        train.Trainer(ddpm_params, "d_none")


def test_ddpm_variants_are_registered_as_diffusion():
    for name, conditioning in (("ddpm", "none"), ("ddpm_class", "class"), ("ddpm_mask", "mask")):
        v = variants.VARIANTS[name]
        assert v.family == "diffusion" and v.conditioning == conditioning
    assert variants.VARIANTS["ddpm_class"].conditional and variants.VARIANTS["ddpm_mask"].paired


@pytest.mark.parametrize("warmup", [True, False])
def test_ema_warmup_forgets_the_random_init_sooner(ddpm_params, warmup):
    ddpm_params["variants"]["ddpm"]["ema_warmup"] = warmup
    trainer = train.Trainer(ddpm_params, "d_none")
    init = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    trainer.train_step()
    live, ema = trainer.G.state_dict(), trainer.G_ema.state_dict()
    moved = [(ema[k] - init[k]).norm() / (live[k] - init[k]).norm() for k in live
             if live[k].is_floating_point() and (live[k] - init[k]).norm() > 0]
    # the EMA moved 1 - decay of the way: 1 - 2/11 with the warm-up, 1 - 0.9 without
    assert torch.stack(moved).mean().item() == pytest.approx(1 - 2 / 11 if warmup else 0.1, rel=1e-3)


def test_the_explorer_maps_ddpm_samples_and_offers_no_latent_sliders(ddpm_params):
    from medgan import explore

    for name in ("d_none", "d_class"):
        train.train(ddpm_params, name)
        sample.sample(ddpm_params, name)
    placed = explore.build(ddpm_params, "tiny")
    page = paths.path(paths.EXPLORE, dataset="tiny").read_text()
    assert placed["gans"] == 0 and "diffusion models have\nno latent to steer" in page
    from test_explore import page_data

    labels = {g["label"] for g in page_data(page)["groups"]}
    assert {"generated · d_none", "generated · d_class"} <= labels
