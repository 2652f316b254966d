"""The report's pieces: the metric table and its best marks, the training curves with the
guard, intensities in HU, the feature map; and the CLI verbs' help."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medgan import cli, paths, report
from medgan.errors import MedganError


def entry(value, low=None, high=None):
    out = {"value": value, "n_real": 10, "n_fake": 10, "seed": 0}
    if low is not None:
        out.update(ci_low=low, ci_high=high)
    return out


def write_metrics(params):
    for name, (fid, ratio, coverage) in {"tiny_dcgan_healthy": (30.0, 1.4, 0.2),
                                         "tiny_dcgan_tumour": (50.0, 0.9, 0.6)}.items():
        metrics = {"fid": entry(fid, fid - 5, fid + 5), "diversity_ratio": entry(ratio),
                   "prdc_recall": entry(coverage), "frd": {"skipped": "radiomics failed", "n_real": 1, "n_fake": 1}}
        result = {"experiment": name, "dataset": "tiny", "variant": "dcgan", "class": name.split("_")[-1],
                  "seed": 0, "n_real": 10, "n_fake": 12, "metrics": metrics}
        paths.path(paths.METRICS, experiment=name).parent.mkdir(parents=True, exist_ok=True)
        paths.path(paths.METRICS, experiment=name).write_text(json.dumps(result))
    baseline = {"dataset": "tiny", "seed": 0, "classes": {
        "healthy": {"halves": "by patient (2 patients)", "n_real": 5, "n_fake": 5,
                    "metrics": {"fid": entry(1.0), "diversity_ratio": entry(1.0), "prdc_recall": entry(0.9)}},
        "tumour": {"skipped": "too few", "n_real": 2, "n_fake": 0}}}
    paths.path(paths.BASELINE, dataset="tiny").parent.mkdir(parents=True, exist_ok=True)
    paths.path(paths.BASELINE, dataset="tiny").write_text(json.dumps(baseline))


def test_metric_table_puts_baselines_beside_experiments_and_marks_the_best_experiment(params):
    write_metrics(params)
    table = report.metric_table(params, "tiny")
    assert list(table["kind"]) == ["experiment", "experiment", "baseline", "baseline"]
    assert table.loc[0, "fid_ci_low"] == 25.0 and table.loc[3, "fid_skipped"] == "too few"
    view = report.table_view(table)
    labels = [c["label"] for c in view["columns"]]
    assert "FRD" not in labels and "FRD" in view["hidden"]  # no value anywhere: listed, not shown
    marked = [r["name"] for r in view["rows"] for c in r["cells"] if c["best"]]
    assert marked == []  # one experiment per class: no race to mark (the baseline's 1.0 never competes)
    skipped_row = view["rows"][3]["cells"][labels.index("FID")]
    assert skipped_row["text"] == "—" and {"mark": skipped_row["note"], "text": "too few"} in view["notes"]


def test_best_is_marked_within_a_class_only():
    table = pd.DataFrame({"kind": ["experiment"] * 4 + ["baseline"], "class": ["tumour", "tumour", "tumour", "all", "tumour"],
                          "fid": [30.0, 50.0, 40.0, 10.0, 1.0], "diversity_ratio": [1.4, 0.9, 2.0, 1.0, 1.0],
                          "recall": [0.2, 0.6, 0.1, 0.9, 0.9]})
    assert report.best_rows(table, "fid", "min") == {0}  # lower is better; pix2pix (all) and the baseline don't compete
    assert report.best_rows(table, "diversity_ratio", "one") == {1}  # |0.9 - 1| is the smallest
    assert report.best_rows(table, "recall", "max") == {1}
    assert report.best_rows(table.assign(fid=7.0), "fid", "min") == set()  # a tie of all


def decoded(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_training_curves_plot_spread_and_mark_the_guard():
    log = pd.DataFrame({"step": [10, 20, 30], "loss_d": [1.0, 0.5, 0.2], "loss_g": [1, 2, 3],
                        "d_real": [0.6, 0.8, 0.99], "d_fake": [0.4, 0.2, 0.01], "d_accuracy": [0.6, 0.9, 1.0],
                        "penalty": 0.0, "l1": 0.0, "fake_std": [0.2, 0.1, 0.01], "spread": [0.9, 0.5, 0.05],
                        "guard": ["", "", "collapse"]})
    assert report.guard_events(log) == [{"step": 30, "reason": "collapse"}]
    assert report.guard_events(log.drop(columns="guard")) == []
    assert report.guard_events(pd.read_csv(io.StringIO("step,guard\n10,\n20,\n"))) == []  # empty column reads as NaN
    assert decoded(report.training_curves(log)).size[0] > 600
    panels = report.training_panels(log)
    assert [(p.title, p.unit_interval) for p in panels] == [
        ("losses", False), ("discriminator", True), ("cross-sample spread vs real", False)]


def test_training_curves_of_a_diffusion_log_plot_its_one_loss():
    log = pd.read_csv(io.StringIO("step,loss,spread,guard,lr\n1,1.0,,,2e-4\n2,0.9,0.8,,2e-4\n3,0.7,,,2e-4\n"))
    gan_width = decoded(report.training_curves(pd.DataFrame({
        "step": [1, 2], "loss_d": [1, 1], "loss_g": [1, 1], "d_accuracy": [0.5, 0.5], "spread": [1, 1]}))).size[0]
    assert decoded(report.training_curves(log)).size[0] < gan_width  # losses and spread: two panels of three
    assert decoded(report.training_curves(log.drop(columns="spread"))).size[0] < gan_width / 2


def test_intensity_histogram_is_in_hu_with_the_wasserstein_distance():
    real, fake = np.zeros((2, 4, 4)), np.ones((3, 4, 4))
    _, info = report.intensity_histogram(real, fake, (-100.0, 400.0))
    assert info["w1"] == pytest.approx(500.0) and info["unit"] == "HU"
    _, info = report.intensity_histogram(real, fake, None)
    assert info["w1"] == pytest.approx(255.0) and info["window"] is None


def test_feature_map_survives_a_feature_constant_in_real_images():
    rng = np.random.default_rng(0)
    train, held_out, fake = rng.normal(size=(20, 5)), rng.normal(size=(8, 5)), rng.normal(size=(10, 5))
    train[:, 4] = held_out[:, 4] = 1.0  # constant in real images: dropped, not divided by zero
    fake[:, 3] += 1e15                   # an outlier feature is clipped
    uri, info = report.feature_map(train, held_out, fake, "radiomics")
    assert info["n_features"] == 4 and len(info["variance"]) == 2 and decoded(uri).size[0] > 200


def test_image_grid_has_make_grid_layout():
    images = np.zeros((3, 4, 5), np.uint8)
    grid = report.image_grid(images, rows=2, columns=2)
    assert grid.shape == (2 * 6 + 2, 2 * 7 + 2)
    assert (grid[8:12, 9:14] == 255).all()  # the 4th slot stays white


@pytest.mark.parametrize("verb", ["report", "turing", "turing-score"])
def test_new_verbs_have_help(verb, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([verb, "--help"])
    assert done.value.code == 0 and "usage: medgan" in capsys.readouterr().out


def test_report_names_the_missing_input(params, capsys):
    assert cli.main(["report"]) == 2
    assert "results/metrics/experiments/tiny_dcgan_healthy.json not found" in capsys.readouterr().err


def test_real_grid_of_a_conditional_gan_has_a_block_per_class():
    held_out = pd.DataFrame({"class": ["a", "b", "b", "b"]})
    images = np.array([np.full((2, 2), v, np.uint8) for v in (10, 20, 30, 40)])
    grid = report.real_grid_like(held_out, images, ["a", "b"], rows=2, columns=2)
    tiles = [int(grid[2 + r * 4, 2 + c * 4]) for r in range(2) for c in range(2)]
    assert tiles == [10, 255, 20, 30]  # class a's row (one image, then white), class b's row


def test_report_names_a_missing_or_damaged_training_log(project):
    from medgan import paths, report

    with pytest.raises(report.ReportError, match=r"results/plots/train/lone/r0\.csv not found .*medgan train lone"):
        report.training("lone")
    log = paths.path(paths.TRAIN_LOG, experiment="lone")
    log.parent.mkdir(parents=True)
    log.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(report.ReportError, match=r"lone/r0\.csv: unreadable training log"):
        report.training("lone")
    with pytest.raises(MedganError, match=r"results/progress/lone/r0\.png not found"):
        report.data_uri_of_file(paths.path(paths.PROGRESS, experiment="lone"))
