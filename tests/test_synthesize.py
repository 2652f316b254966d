"""Controllable lesion synthesis: label-map edits in mm (anisotropic pixels), lesions only inside
the organ, the synthetic set readable as a dataset, and the segmentation-utility arms."""

import json

import numpy as np
import pytest
from scipy import ndimage

from medgan import cli, config, edits, evaluate, labels, paths, synthesize, train
from medgan.ingest.split import assert_no_case_overlap
from medgan.ingest.volumes import written_pixel_mm
from medgan.metrics import REGISTRY, segmentation
from medgan.prepare import load_manifest
from conftest import tiny_params

ENC = labels.Encoding(2, 2, (1, 2))
PIXEL = (0.5, 1.0)  # rows 0.5 mm, columns 1 mm: a disc in mm is twice as tall as wide in pixels


def organ_map(size=96):
    """An organ ellipse that is a 60 mm x 60 mm disc at PIXEL, with one lesion."""
    yy, xx = np.mgrid[:size * 2, :size]
    m = ((((yy - size) * PIXEL[0]) ** 2 + ((xx - size / 2) * PIXEL[1]) ** 2) < 30 ** 2).astype(np.uint8)
    m[(((yy - size) * PIXEL[0]) ** 2 + ((xx - size / 2) * PIXEL[1]) ** 2) < 5 ** 2] = 2
    return m


def extent_mm(mask):
    rows, cols = np.nonzero(mask)
    return (rows.max() - rows.min() + 1) * PIXEL[0], (cols.max() - cols.min() + 1) * PIXEL[1]


def test_added_lesions_lie_in_the_organ_and_have_the_asked_size_in_mm():
    label_map = organ_map()
    organ = label_map > 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        edited, detail = edits.add(label_map, ENC, PIXEL, 2, (6.0, 6.0), False, 0.0, rng)
        new = (edited == 2) & (label_map != 2)
        assert new.any() and not (new & ~organ).any(), detail
        assert (edited[label_map == 0] == 0).all()  # background untouched
        components, n = ndimage.label(edited == 2)
        assert n == 3, detail  # two added, apart from the existing one
        for c in range(1, n + 1):
            piece = components == c
            if (piece & (label_map == 2)).any():
                continue
            area = piece.sum() * PIXEL[0] * PIXEL[1]
            assert np.sqrt(area / np.pi) == pytest.approx(6.0, rel=0.1)
            height, width = extent_mm(piece)  # irregularity 0: a disc in mm, not in pixels
            assert height == pytest.approx(12.0, abs=1.5) and width == pytest.approx(12.0, abs=1.5)


def test_irregular_blobs_keep_their_area_and_are_not_discs():
    label_map = organ_map()
    radii, roundness = [], []
    for seed in range(8):
        edited, _ = edits.add(label_map, ENC, PIXEL, 1, (7.0, 7.0), False, 0.6, np.random.default_rng(seed))
        piece = (edited == 2) & (label_map != 2)
        area = piece.sum() * PIXEL[0] * PIXEL[1]
        radii.append(np.sqrt(area / np.pi))
        height, width = extent_mm(piece)
        roundness.append(abs(height - width))
    assert np.mean(radii) == pytest.approx(7.0, rel=0.15)
    assert max(roundness) > 2.0  # lobulated, not all discs


def test_grow_and_shrink_are_in_mm_along_both_axes_and_stay_in_the_organ():
    label_map = organ_map()
    before_h, before_w = extent_mm(label_map == 2)
    grown, _ = edits.grow(label_map, ENC, PIXEL, 3.0)
    h, w = extent_mm(grown == 2)
    assert h - before_h == pytest.approx(6.0, abs=1.1) and w - before_w == pytest.approx(6.0, abs=2.1)
    assert not ((grown == 2) & (label_map == 0)).any()
    huge, _ = edits.grow(label_map, ENC, PIXEL, 36.0)  # lesion 5 mm + 36 mm > the 30-mm organ
    assert ((huge == 2) == (label_map > 0)).all()  # grown to the organ, never beyond
    shrunk, _ = edits.shrink(label_map, ENC, PIXEL, 2.0)
    h, w = extent_mm(shrunk == 2)
    assert before_h - h == pytest.approx(4.0, abs=1.1) and before_w - w == pytest.approx(4.0, abs=2.1)
    assert ((shrunk > 0) == (label_map > 0)).all()  # eroded lesion becomes organ tissue


def test_move_and_remove_keep_the_organ_and_the_lesion_size():
    label_map = organ_map()
    moved, detail = edits.move(label_map, ENC, PIXEL, np.random.default_rng(1))
    assert "unchanged" not in detail
    assert (moved == 2).sum() == (label_map == 2).sum() and not (moved == label_map).all()
    assert ((moved > 0) == (label_map > 0)).all()
    removed, _ = edits.remove(label_map, ENC)
    assert not (removed == 2).any() and ((removed > 0) == (label_map > 0)).all()


def test_edits_are_deterministic_from_the_seed_and_pick_applicable_kinds():
    settings = config.validate(tiny_params())["synthesize"]
    label_map = organ_map()
    a = edits.apply(label_map, ENC, PIXEL, settings, np.random.default_rng([3, 1]))
    b = edits.apply(label_map, ENC, PIXEL, settings, np.random.default_rng([3, 1]))
    assert (a[0] == b[0]).all() and a[1] == b[1]
    healthy = np.where(label_map == 2, 1, label_map).astype(np.uint8)
    assert edits.applicable(healthy, ENC) == ["add"]
    assert edits.apply(np.zeros_like(label_map), ENC, PIXEL, settings, np.random.default_rng(0))[1].kind == "none"


def test_written_pixel_mm_follows_crop_resample_and_fit():
    assert written_pixel_mm((160, 160), (2.2, 2.2), (64, 64), "pad") == pytest.approx((5.5, 5.5))
    # anisotropic source, pad: both axes scaled by one factor (the longer side fits)
    assert written_pixel_mm((100, 200), (1.0, 0.5), (64, 64), "pad") == pytest.approx((100 / 32, 200 / 64 * 0.5))
    assert written_pixel_mm((100, 200), (1.0, 0.5), (64, 64), "stretch") == pytest.approx((100 / 64, 200 / 64 * 0.5))
    assert written_pixel_mm((100, 200), (1.0, 0.5), (64, 64), "pad", (0.8, 0.8)) == (0.8, 0.8)


def test_synthesize_settings_are_checked():
    raw = tiny_params(synthesize={"experiments": ["nope", "tiny_dcgan_tumour"], "radius_mm": [9, 3]})
    with pytest.raises(config.ConfigError) as err:
        config.validate(raw)
    text = str(err.value)
    assert "synthesize.experiments[0]" in text and "synthesize.radius_mm" in text
    assert "synthesize.experiments[1]" in text and "dcgan" in text


def _pix2pix_params(project, variant="pix2pix", rendering="auto"):
    raw = yaml_params(project)
    # big enough for a U-Net to find lesions: 128 px at 3 mm -> 64 px at 6 mm
    raw["phantoms"]["tiny"] = {"kind": "lits", "n_cases": 6, "shape": [128, 128, 24], "spacing": [3.0, 3.0, 8.0]}
    raw["datasets"]["tiny"].update(write_masks=True, image_size=[64, 64])
    raw["variants"] = {variant: {"ngf": 4, "ndf": 4}}
    raw["experiments"] = {"tiny_p2p": {"dataset": "tiny", "variant": variant, "class": "all"}}
    raw["train"].update(iterations=4, batch_size=4)
    raw["evaluate"] = {"metrics": ["segmentation_utility"], "bootstrap": 20}
    raw["synthesize"] = {"experiments": ["tiny_p2p"], "copies": 2, "radius_mm": [11.0, 17.0],
                         "grow_mm": [11.0, 12.0], "shrink_mm": [11.0, 12.0], "rendering": rendering,
                         "segmentation": {"iterations": 200, "batch_size": 8, "channels": [8, 16, 32]}}
    return config.validate(raw)


def yaml_params(project):
    import yaml

    return yaml.safe_load((project / "params.yaml").read_text())


@pytest.fixture
def trained(project):
    from medgan import phantoms, prepare

    params = _pix2pix_params(project)
    phantoms.generate("lits", paths.path(paths.RAW, name="tiny"), params["phantoms"]["tiny"], 0)
    prepare.prepare_dataset("tiny", params["datasets"]["tiny"], paths.path(paths.SLICES, dataset="tiny"), 0)
    train.train(params, "tiny_p2p")
    return params


@pytest.mark.slow
def test_synthesize_writes_a_dataset_with_lesions_only_in_the_organ_deterministically(trained, project):
    params = trained
    manifest = synthesize.synthesize(params, "tiny_p2p")
    folder = paths.path(paths.SYNTHETIC, experiment="tiny_p2p")
    on_disk = load_manifest(folder)  # the dataset checks: columns, splits, every listed file there
    assert_no_case_overlap(on_disk)
    slices = paths.path(paths.SLICES, dataset="tiny")
    real = load_manifest(slices)
    train_files = set(real.loc[real["split"] == "train", "path"])
    assert set(on_disk["source_path"]) <= train_files  # never the held-out split
    assert set(on_disk["case"]) <= set(real.loc[real["split"] == "train", "case"])
    assert len(on_disk) == 2 * len(train_files) and set(on_disk["edit"]) <= {*edits.KINDS, "none"}
    assert {"add", "remove"} <= set(on_disk["edit"])
    for _, row in on_disk.iterrows():
        edited = segmentation.read_masks(folder, [row.mask_path])[0]
        source = segmentation.read_masks(slices, [real.set_index("path").loc[row.source_path, "mask_path"]])[0]
        assert not ((edited == 2) & (source == 0)).any()  # lesions only inside the liver label
        assert ((edited > 0) == (source > 0)).all()        # the organ itself is never edited
        count, area = edits.lesion_stats(edited, ENC, (row.pixel_mm_y, row.pixel_mm_x))
        assert (row.lesion_count, row.lesion_area_mm2) == (count, pytest.approx(area, abs=0.01))
        assert row.pixel_mm_x == pytest.approx(6.0) and row.pixel_mm_y == pytest.approx(6.0)
        assert row["class"] == ("tumour" if count else "healthy")
    summary = json.loads((folder / "synthesize.json").read_text())
    assert summary["n_images"] == len(on_disk) and summary["rendering"] == "whole"
    assert summary["lesion_contrast_hu"]["real_train"]["n"] > 0
    first = on_disk["sha1"].tolist()
    synthesize.synthesize(params, "tiny_p2p")
    assert load_manifest(folder)["sha1"].tolist() == first  # deterministic from the seed

    # paint rendering: outside the edited region every pixel is the real slice's
    painted = dict(params, synthesize={**params["synthesize"], "rendering": "paint"})
    out = synthesize.synthesize(painted, "tiny_p2p")
    for row in out.itertuples():
        image = segmentation.read_images(folder, [row.path])[0]
        source_image = segmentation.read_images(slices, [row.source_path])[0]
        edited = segmentation.read_masks(folder, [row.mask_path])[0]
        source = segmentation.read_masks(slices, [real.set_index("path").loc[row.source_path, "mask_path"]])[0]
        region = ndimage.binary_dilation(edited != source, iterations=params["synthesize"]["paint_margin_px"],
                                         structure=np.ones((3, 3)))
        assert (image[~region] == source_image[~region]).all()

    # the segmentation-utility arms, scored on the real held-out split
    assert "segmentation_utility" in REGISTRY
    results = evaluate_segmentation(params)
    for arm in segmentation.ARMS:
        entry = results[f"segmentation_{arm}_dice"]
        assert 0 <= entry["value"] <= 1
        assert ("needs >= 5 held-out patients" in entry.get("ci_missing", "")) if entry["n_patients"] < 5 \
            else 0 <= entry["ci_low"] <= entry["ci_high"] <= 1
        assert entry["n_real"] > 0 and entry["n_patients"] >= 1
    chance = results["segmentation_chance_dice"]["value"]
    assert 0 < chance < 0.05 and results["segmentation_real_dice"]["value"] > 5 * chance  # beats chance
    assert results["segmentation_mixed_dice"]["n_fake"] == len(out)
    again = evaluate_segmentation(params)
    assert again["segmentation_real_dice"] == results["segmentation_real_dice"]


def evaluate_segmentation(params):
    manifest = evaluate.manifest_with_files("tiny")
    real = evaluate.real_set(params, "tiny", manifest, "test", "all")
    inp = evaluate.inputs_for(params, "tiny", real, real, real, manifest, None, is_baseline=False)
    inp.synthetic = paths.path(paths.SYNTHETIC, experiment="tiny_p2p")
    return segmentation.compute(inp)


def test_synthesize_refuses_an_unpaired_model_with_exit_status_2(prepared, capsys):
    train.train(prepared, "tiny_dcgan_tumour")
    assert cli.main(["synthesize", "tiny_dcgan_tumour"]) == 2
    assert "mask -> image experiment" in capsys.readouterr().err


def test_synthesize_has_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["synthesize", "--help"])
    assert "data/synthetic/EXPERIMENT" in capsys.readouterr().out


def test_summary_lists_the_segmentation_arms_with_cis(monkeypatch):
    from medgan import summary

    def entry(value):
        return {"value": value, "ci_low": value - 0.1, "ci_high": value + 0.1, "n_real": 40, "n_fake": 0,
                "n_patients": 4, "n_train": 120}

    metrics = {f"segmentation_{arm}_{stat}": entry(v) for arm, v in zip(segmentation.ARMS, (0.5, 0.6, 0.3))
               for stat in ("dice", "lesion_sensitivity")}
    metrics["segmentation_chance_dice"] = {"value": 0.01}
    monkeypatch.setattr(summary, "records", lambda params: [
        ({"experiment": "lits_pix2pix"}, metrics),
        ({"experiment": "lits_dcgan"}, {"segmentation_real_dice": {"skipped": "no synthetic set"}}),
        ({"experiment": "baseline: real vs real"}, metrics)])
    lines = summary.segmentation_section({})
    rows = [line for line in lines if line.startswith("| lits_pix2pix")]
    assert [r.split(" | ")[1] for r in rows] == ["real pairs", "real + synthetic", "synthetic only"]
    assert "0.6 [0.5, 0.7]" in rows[1] and "40 / 4" in rows[1] and not any("lits_dcgan" in line for line in lines)
    monkeypatch.setattr(summary, "records", lambda params: [({"experiment": "x"}, {})])
    assert summary.segmentation_section({}) == []
