"""pix2pix as the reference trains and tests it: every held-out pair scored with patient-level
CIs, explicit settings (DiffAugment, LR schedule, test-time dropout, label encoding) that reach
the networks and optimisers, and the inpainting mode that keeps everything outside its region."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from medgan import config, evaluate, image_io, inpaint, labels, networks, optim, paths, sample, train, variants
from medgan.metrics import common
from conftest import tiny_params

SIZE = 32
SPLITS = ["train", "train", "train", "val", "test", "test"]
SMALL = {"pix2pix": {"ngf": 4, "ndf": 4}, "pix2pix_inpaint": {"ngf": 4, "ndf": 4, "region_margin": [2, 3]}}


def _organ_lesion_dataset(root, per_case=3, lesion_in_train=True):
    """Volumes-style slices: organ disk (label 1) with a lesion (label 2) in some slices; six
    patients, two of them held out (test)."""
    rows, rng = [], np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for case, split in enumerate(SPLITS):
        for k in range(per_case):
            cy, cx = rng.uniform(12, 20, 2)
            mask = ((((yy - cy) ** 2 + (xx - cx) ** 2) < 100)).astype(np.uint8)
            tumour = k > 0 and (lesion_in_train or split != "train")
            if tumour:
                mask[(((yy - cy - 2) ** 2 + (xx - cx) ** 2) < 9)] = 2
            image = np.clip(20 + 100 * (mask == 1) + 190 * (mask == 2) + rng.normal(0, 4, mask.shape), 0, 255)
            cls = "tumour" if tumour else "healthy"
            rel, rel_mask = f"{split}/{cls}/{case}_{k:04d}.png", f"masks/{split}/{cls}/{case}_{k:04d}.png"
            for path, array in ((rel, image.astype(np.uint8)), (rel_mask, mask)):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / path)
            rows.append({"case": str(case), "split": split, "class": cls, "path": rel, "mask_path": rel_mask,
                         "window_low": -100, "window_high": 400})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


def _params(variant="pix2pix", train_overrides=None, sample_overrides=None):
    raw = tiny_params(variants=SMALL)
    raw["datasets"]["organs"] = {"kind": "volumes", "raw": "unused", "image_size": [SIZE, SIZE],
                                 "classes": ["healthy", "tumour"]}
    raw["experiments"] = {"p2p": {"dataset": "organs", "variant": variant, "class": "all",
                                  "train": train_overrides or {}}}
    raw["train"].update(iterations=4, batch_size=4, checkpoint_every=2, log_every=1, progress_every=2)
    raw["sample"] = {"n": 2, "grid_columns": 3, "interpolation_steps": 3, **(sample_overrides or {})}
    raw["evaluate"] = {"metrics": ["paired"], "bootstrap": 20}
    return config.validate(raw)


@pytest.fixture
def organs(project):
    _organ_lesion_dataset(paths.path(paths.SLICES, dataset="organs"))
    return project


def test_paired_variant_names_agree_with_config():
    assert {n for n, v in variants.VARIANTS.items() if v.paired} == set(config.PAIRED_VARIANTS)


def test_diffaugment_auto_is_off_for_paired_and_on_for_unpaired_variants(organs):
    params = _params()
    assert config.training_settings(params, "p2p")["train"]["diffaugment"] == []
    asked = _params(train_overrides={"diffaugment": ["translation"]})
    assert config.training_settings(asked, "p2p")["train"]["diffaugment"] == ["translation"]
    raw = tiny_params()
    assert config.training_settings(config.validate(raw), "tiny_dcgan_tumour")["train"]["diffaugment"] == [
        "translation", "cutout"]


def test_linear_schedule_factor_matches_the_reference_shape():
    factor = optim.lr_factor("linear", 0.5, 10)
    assert [factor(s) for s in range(11)] == [1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
    assert optim.lr_factor("constant", 0.5, 10)(9) == 1.0


def test_settings_reach_the_networks_optimisers_and_the_json(organs, monkeypatch):
    params = _params(train_overrides={"lr_schedule": "linear", "lr_decay_start": 0.5})
    calls = []
    monkeypatch.setattr(train, "diff_augment", lambda x, policy, rng: calls.append(policy) or x)
    trainer = train.Trainer(params, "p2p")
    # label encoding from the dataset's declaration: organ (1) -> 0.0, lesion (2) -> 1.0
    cond = trainer.data.condition(None, torch.tensor([[[[0, 1, 2]]]], dtype=torch.uint8), trainer.rng)
    assert cond.flatten().tolist() == [-1.0, 0.0, 1.0]
    trainer.run()
    assert calls == []  # no DiffAugment on the PatchGAN unless asked
    log = pd.read_csv(paths.path(paths.TRAIN_LOG, experiment="p2p"))
    lr = 0.0002
    assert log["lr"].tolist() == pytest.approx([lr, lr, lr, lr / 2])
    for opt in (trainer.family.opt_g, trainer.family.opt_d):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.0)  # after the last step
    sample.sample(params, "p2p")
    result = evaluate.evaluate(params, "p2p")
    settings = result["settings"]
    assert settings["train"]["lr_schedule"] == "linear" and settings["train"]["diffaugment"] == []
    assert settings["training_run"]["precision"] in ("fp32", "bf16") and settings["training_run"]["device"] == "cpu"
    assert settings["labels"] == {"max_value": 2, "lesion_value": 2, "organ_values": [1, 2]}
    assert settings["sample"]["dropout_setting"] is True
    assert settings["sample"]["test_time_dropout"] is False  # a 32x32 U-Net has no dropout level


def test_label_encoding_does_not_depend_on_the_training_split(project):
    _organ_lesion_dataset(paths.path(paths.SLICES, dataset="organs"), lesion_in_train=False)
    trainer = train.Trainer(_params(), "p2p")
    assert int(trainer.data.masks.max()) == 1  # no lesion among the training masks
    organ = trainer.data.condition(None, torch.ones(1, 1, 1, 1, dtype=torch.uint8), trainer.rng)
    assert organ.item() == 0.0  # organ still encodes as with tumours present


def test_resume_with_linear_schedule_equals_a_straight_run(organs):
    params = _params(train_overrides={"lr_schedule": "linear"})
    straight = train.Trainer(params, "p2p")
    straight.run()
    reference = {k: v.clone() for k, v in straight.G.state_dict().items()}
    paths.path(paths.CHECKPOINTS, experiment="p2p").joinpath("last.pt").unlink()
    first = train.Trainer(params, "p2p")
    first.run(stop_after=2)
    resumed = train.Trainer(params, "p2p")
    resumed.run()
    assert resumed.family.opt_g.param_groups[0]["lr"] == straight.family.opt_g.param_groups[0]["lr"]
    for key, value in resumed.G.state_dict().items():
        assert torch.equal(value, reference[key]), key


def test_test_time_dropout_is_seeded_noise_and_can_be_switched_off():
    torch.manual_seed(0)
    G = networks.UnetGenerator((64, 64), ngf=4, dropout=0.5)
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    sample.set_test_time_dropout(G, True)
    assert not any(m.training for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        a, b = G(x), G(x)
        torch.manual_seed(5)
        c = G(x)
        torch.manual_seed(5)
        d = G(x)
    assert not torch.equal(a, b) and torch.equal(c, d)
    sample.set_test_time_dropout(G, False)
    with torch.no_grad():
        assert torch.equal(G(x), G(x))


def test_every_held_out_pair_is_scored_with_patient_cis(organs):
    params = _params()  # sample.n = 2 must not cap the pairs
    train.train(params, "p2p")
    sample.sample(params, "p2p")
    index = pd.read_csv(paths.path(paths.SAMPLES, experiment="p2p") / "samples.csv", dtype={"case": str})
    assert index["pair"].nunique() == 6 and set(index["case"]) == {"4", "5"}
    metrics = evaluate.evaluate(params, "p2p")["metrics"]
    ssim = metrics["paired_ssim_image"]
    assert ssim["n_pairs"] == 6 and ssim["n_patients"] == 2 and ssim["bootstrap_unit"] == "patient"
    assert ssim["ci_missing"] == "interval needs >= 5 held-out patients, this set has 2" and "ci_low" not in ssim
    assert {p: e["n_pairs"] for p, e in ssim["per_patient"].items()} == {"4": 3, "5": 3}
    mean_of_patients = np.mean([e["value"] for e in ssim["per_patient"].values()])
    assert ssim["value"] == pytest.approx(mean_of_patients)  # equal sizes: same mean
    lesion = metrics["paired_mae_lesion"]
    assert lesion["n_pairs"] == 4 and lesion["n_patients"] == 2  # two tumour slices per patient
    assert metrics["paired_contrast_hu_real"]["value"] > 100  # the phantom lesion is bright
    assert "inpainting" in metrics["paired_ssim_region"]["skipped"]


def test_paired_interval_leaves_out_patients_not_slices():
    values = np.repeat([0.0, 1.0, 0.2, 0.9, 0.4, 0.6], 20)  # six patients, identical slices within each
    mean = lambda i: float(values[i].mean())  # noqa: E731
    as_slices = common.interval(mean, [np.char.add("image:", np.arange(120).astype(str))], "paired_ssim_image",
                                {"bootstrap": 1}, 0)
    by_patient = common.interval(mean, [np.char.add("patient:", np.repeat(list("abcdef"), 20))],
                                 "paired_ssim_image", {"bootstrap": 1}, 0)
    assert as_slices["ci_high"] - as_slices["ci_low"] < 0.25  # slices as independent: a falsely narrow interval
    assert by_patient["ci_high"] - by_patient["ci_low"] > 0.6 and by_patient["ci_df"] == pytest.approx(5)
    two = common.interval(mean, [np.char.add("patient:", np.repeat(list("ab"), 60))], "paired_ssim_image",
                          {"bootstrap": 1}, 0)
    assert two["ci_missing"] == "interval needs >= 5 held-out patients, this set has 2"


# -- inpainting ---------------------------------------------------------------------------------

def test_inpaint_generator_keeps_every_pixel_outside_the_region():
    torch.manual_seed(0)
    G = inpaint.InpaintGenerator((SIZE, SIZE), ngf=4, feather=2).eval()
    image = torch.randint(0, 256, (3, 1, SIZE, SIZE), dtype=torch.uint8)
    label_map = torch.zeros_like(image)
    label_map[:, :, 8:24, 8:24] = 1
    label_map[:, :, 12:16, 12:16] = 2
    region = inpaint.dilate(label_map == 2, 3)
    encoding = labels.encoding_of({"kind": "volumes"})
    with torch.no_grad():
        cond = inpaint.condition(image_io.to_model_range(image), label_map, region, encoding, G.feather)
        raw = image_io.to_uint8(G(cond))
    assert torch.equal(raw[~region], image[~region])  # the network's own composite, no clean-up
    assert not torch.equal(raw[region], image[region])
    core = inpaint.blend_weights(region, G.feather) == 1
    assert core.any() and (cond[:, :1][core] == 0).all()  # G never sees the region's inside
    band = region & ~core
    assert torch.equal(image_io.to_uint8(cond[:, :1])[band], image[band])  # only its border band
    painted = inpaint.paint(G, image[0, 0].numpy(), label_map[0, 0].numpy(), region[0, 0].numpy(), encoding)
    assert isinstance(painted, np.ndarray) and painted.shape == (SIZE, SIZE)
    assert np.array_equal(painted[~region[0, 0].numpy()], image[0, 0].numpy()[~region[0, 0].numpy()])


def test_blend_ramps_inside_the_border_only():
    region = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    region[:, :, 4:12, 4:12] = True
    w = inpaint.blend_weights(region, 2)
    assert w[~region].abs().max() == 0
    assert w[0, 0, 4, 8].item() == pytest.approx(1 / 3) and w[0, 0, 5, 8].item() == pytest.approx(2 / 3)
    assert w[0, 0, 7, 8].item() == 1.0


def test_training_regions_surround_lesions_or_organ_tissue():
    label_maps = torch.zeros(40, 1, SIZE, SIZE, dtype=torch.uint8)
    label_maps[:, :, 8:24, 8:24] = 1
    label_maps[:20, :, 14:17, 14:17] = 2
    encoding = labels.encoding_of({"kind": "volumes"})
    hp = {"region_margin": [2, 4], "lesion_share": 0.5}
    regions = inpaint.training_regions(label_maps, encoding, hp, torch.Generator().manual_seed(0))
    lesion = label_maps == 2
    covers = [bool(regions[i][lesion[i]].all()) for i in range(20)]
    assert 3 <= sum(covers) <= 17  # about half the tumour slices get a region around the lesion
    organ = label_maps[20:] >= 1
    assert all(bool((regions[20 + i] & organ[i]).any()) for i in range(20))  # healthy: in the organ


def test_inpaint_variant_trains_samples_and_is_measured(organs):
    params = _params(variant="pix2pix_inpaint")
    train.train(params, "p2p")
    sample.sample(params, "p2p")
    folder = paths.path(paths.SAMPLES, experiment="p2p")
    index = pd.read_csv(folder / "samples.csv")
    for pair, rows in index.groupby("pair"):
        files = {r.kind: np.asarray(Image.open(folder / r.path)) for r in rows.itertuples()}
        outside = files["region"] == 0
        assert outside.any() and (~outside).any()
        assert np.array_equal(files["fake"][outside], files["real"][outside]), pair
    metrics = evaluate.evaluate(params, "p2p")["metrics"]
    assert metrics["paired_ssim_region"]["n_pairs"] == 6
    assert metrics["paired_mae_region"]["value"] > 0
    assert metrics["paired_contrast_hu_fake"]["n_pairs"] == 4
    json.dumps(metrics)  # JSON-serialisable


def test_summary_cell_names_the_patients_behind_a_paired_number():
    from medgan import summary

    row = {"paired_ssim": 0.8, "paired_ssim_ci_low": 0.7, "paired_ssim_ci_high": 0.9, "paired_ssim_patients": 2}
    assert summary.value_cell(row, "paired_ssim") == "0.8 [0.7, 0.9] (2 patients)"
