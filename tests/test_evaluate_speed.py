"""Evaluate's fast paths give the numbers of the code they replaced: blocked nearest-neighbour
distances (memorisation), PRDC from distance matrices computed once, KID from kernels computed
once; radiomics without pyradiomics' per-image LoG warning, with its GLCM loops vectorised;
real-set features shared by every experiment and seed."""

import contextlib
import io
import logging

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import cdist

from medgan.metrics import features, kid, memorisation, prdc


def test_blocked_nearest_is_scipys_cdist_exactly(monkeypatch):
    rng = np.random.default_rng(0)
    reference = rng.random((300, 16, 16)).astype(np.float32)
    queries = rng.random((130, 16, 16)).astype(np.float32)
    queries[3] = reference[17]  # an exact copy: distance exactly 0
    reference[40] = reference[17]  # a tie: the first index wins, as with argmin
    queries[7] = np.clip(reference[5] + 1e-7, 0, 1)  # a near copy
    monkeypatch.setattr(memorisation, "BLOCK_ROWS", 50)  # several blocks, a partial last one
    monkeypatch.setattr(memorisation, "SMALL_PAIRS", 0)  # the blocked path, not cdist's shortcut
    distance, index = memorisation.nearest(queries, reference)
    full = cdist(queries.reshape(130, -1), reference.reshape(300, -1))
    assert np.array_equal(distance, full.min(1)) and np.array_equal(index, full.argmin(1))
    assert distance[3] == 0.0 and index[3] == 17 and index[7] == 5


def _prdc_package(real, fake, k):
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):
        return compute_prdc(real_features=real, fake_features=fake, nearest_k=k)


def test_prdc_from_distances_equals_the_prdc_package_on_sets_and_on_replicates():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(120, 64)), rng.normal(0.4, 1.2, size=(90, 64))
    assert prdc.prdc_values(real, fake, 5) == _prdc_package(real, fake, 5)
    dist = prdc.distances(real, fake)
    i, j = np.unique(rng.integers(0, 120, 120)), np.unique(rng.integers(0, 90, 90))  # a replicate
    again = prdc.values_from_distances(dist[0][np.ix_(i, i)], dist[1][np.ix_(j, j)], dist[2][np.ix_(i, j)], 5)
    expected = _prdc_package(real[i], fake[j], 5)
    assert again.keys() == expected.keys()
    for part in prdc.PARTS:
        assert again[part] == pytest.approx(expected[part], rel=1e-12, abs=1e-12), part
    assert 0 < again["precision"] < 1 and 0 < again["coverage"] < 1


def _mmd2_direct(x, y):
    """The estimator as it was computed before: kernels of the given rows only."""
    d = x.shape[1]
    kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()


def test_kid_from_kernels_computed_once_equals_the_direct_estimator():
    rng = np.random.default_rng(2)
    real, fake = rng.random((80, 32)), rng.random((70, 32)) + 0.1
    assert kid.polynomial_mmd2(real, fake) == pytest.approx(_mmd2_direct(real, fake), rel=1e-10)
    values = kid.kid_subsets(real, fake, 30, 4, seed=5)
    draw = np.random.default_rng(5)
    for value in values:  # the same subsets as before, in the same order
        a, b = draw.choice(80, 30, replace=False), draw.choice(70, 30, replace=False)
        assert value == pytest.approx(_mmd2_direct(real[a], fake[b]), rel=1e-10)
    assert values.mean() > 0


@pytest.fixture
def slices(tmp_path):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:64, :64]
    files = []
    for n in range(3):
        image = np.where((yy - 30 - n) ** 2 + (xx - 28) ** 2 < 150 + 40 * n, 170, 50) + rng.normal(0, 9, (64, 64))
        files.append(str(tmp_path / f"{n}.png"))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(files[-1])
    return files


def test_radiomics_without_log_gives_the_same_features_and_no_warning_per_image(slices, caplog):
    from frd_score.frd import FRD_VERSION_V1, get_feature_extractor, process_image_mask_pair

    extractor = features.radiomics_extractor()
    assert "LoG" not in extractor.enabledImagetypes and {"Original", "Wavelet"} <= set(extractor.enabledImagetypes)
    with_log = get_feature_extractor(frd_version=FRD_VERSION_V1, image_dim=2)
    assert "LoG" in with_log.enabledImagetypes  # frd-score's own configuration has it
    radiomics_logger = logging.getLogger("radiomics")
    level = radiomics_logger.level
    radiomics_logger.setLevel(logging.DEBUG)  # whatever a job's logging says, nothing to flood it with
    try:
        for image in slices:
            with caplog.at_level(logging.WARNING, logger="radiomics"):
                caplog.clear()
                ours = process_image_mask_pair((image, None), feature_extractor=extractor, frd_version=FRD_VERSION_V1)
                assert not [r for r in caplog.records if "LoG" in r.getMessage()]
                theirs = process_image_mask_pair((image, None), feature_extractor=with_log,
                                                 frd_version=FRD_VERSION_V1)
                assert any("too small to apply LoG" in r.getMessage() for r in caplog.records)  # the flood's cause
            assert ours[1].keys() == theirs[1].keys() and len(ours[0]) > 300
            assert np.array_equal(np.asarray(ours[0], float), np.asarray(theirs[0], float))
    finally:
        radiomics_logger.setLevel(level)


def test_glcm_by_bincount_gives_pyradiomics_features_exactly(slices, monkeypatch):
    """The patched GLCM coefficients (glcm_speed) against the library's own loops, on every
    feature of the FRD extractor (Original + Wavelet: GLCMs of several gray-level ranges)."""
    from frd_score.frd import FRD_VERSION_V1, process_image_mask_pair
    from radiomics import glcm

    from medgan.metrics import glcm_speed

    extractor = features.radiomics_extractor()  # installs the patch
    assert glcm.RadiomicsGLCM._calculateCoefficients is glcm_speed.calculate_coefficients

    def extract():
        return [process_image_mask_pair((image, None), feature_extractor=extractor, frd_version=FRD_VERSION_V1)
                for image in slices]

    patched = extract()
    monkeypatch.setattr(glcm.RadiomicsGLCM, "_calculateCoefficients", glcm_speed.ORIGINAL)
    library = extract()
    for ours, theirs in zip(patched, library):
        assert ours[1].keys() == theirs[1].keys() and sum("glcm" in k for k in ours[1]) >= 5 * 20
        assert np.array_equal(np.asarray(ours[0], float), np.asarray(theirs[0], float), equal_nan=True)


def test_glcm_sums_by_index_drop_cells_outside_the_range():
    from medgan.metrics.glcm_speed import sums_by_index

    P = np.arange(2 * 3 * 3 * 2, dtype=float).reshape(2, 3, 3, 2)
    index = np.array([[0, 1, 5], [1, 2, -1], [0, 0, 2]])
    out = sums_by_index(P, index, 3)
    for k in range(3):
        assert np.array_equal(out[:, k, :], P[:, index == k, :].sum(1))


def test_real_set_features_are_cached_once_for_every_experiment_and_seed(tmp_path, monkeypatch):
    """The cache file of a real set depends on the dataset, split, class, preprocessing and the
    images, not on which experiment or seed replicate asks for it."""
    import pandas as pd

    from medgan import evaluate

    monkeypatch.chdir(tmp_path)
    files = []
    for n in range(4):
        files.append(str(tmp_path / f"{n}.png"))
        Image.fromarray(np.full((8, 8), 40 * n, np.uint8)).save(files[-1])
    manifest = pd.DataFrame({"file": files, "split": ["test", "test", "train", "train"], "class": "tumour"})

    def params(seed, experiment):
        return {"seed": seed, "experiments": {experiment: {"dataset": "d"}},
                "datasets": {"d": {"classes": ["tumour"], "image_size": [8, 8], "kind": "lits"}}}

    extractor = {"name": "inception", "weights": {"state_dict_sha256": "a" * 64}}
    keys = {features.cache_file(extractor, evaluate.real_set(params(seed, name), "d", manifest, "test", "tumour"))[0]
            for seed in (0, 1, 7) for name in ("gan_a", "gan_b")}
    assert len(keys) == 1
    other_split = features.cache_file(extractor,
                                      evaluate.real_set(params(0, "gan_a"), "d", manifest, "train", "tumour"))[0]
    other_weights = features.cache_file({**extractor, "weights": {"state_dict_sha256": "b" * 64}},
                                        evaluate.real_set(params(0, "gan_a"), "d", manifest, "test", "tumour"))[0]
    assert other_split not in keys and other_weights not in keys
