import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from medgan import evaluate, paths, sample, train
from medgan.metrics import fid, frd


def _write_images(folder, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, a in enumerate(arrays):
        out.append(str(folder / f"{i:03d}.png"))
        Image.fromarray(a).save(out[-1])
    return out


def _blobs(n, seed, shift=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    images = []
    for _ in range(n):
        cy, cx, r = rng.uniform(10, 22), rng.uniform(10, 22), rng.uniform(4, 9)
        img = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 180, 40) + rng.normal(0, 8, (32, 32)) + shift
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


@pytest.fixture
def random_inception_weights(tmp_path, monkeypatch):
    """PLUMBING ONLY: a random-initialised FID Inception saved under the real file name in a
    temporary TORCH_HOME exercises pytorch-fid's real loading path offline. Values from it
    mean nothing about image quality."""
    import pytorch_fid.inception as inception
    from torchvision.models.inception import Inception3

    torch.manual_seed(0)
    with monkeypatch.context() as patch:
        patch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: None)
        patch.setattr(Inception3, "load_state_dict", lambda self, *a, **k: None)
        model = inception.fid_inception_v3()
    for module in model.modules():  # keep activations O(1) through 90+ random layers
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(model.state_dict(), home / "hub" / "checkpoints" / fid.WEIGHTS_FILE)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home / "hub" / "checkpoints" / fid.WEIGHTS_FILE


def test_frechet_distance_matches_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 2))
    b = rng.normal(0, 1, (20000, 2)) * np.array([2.0, 1.0]) + np.array([1.0, 0.0])
    # ||mu_a - mu_b||^2 + tr(Sa + Sb - 2 sqrt(Sa Sb)) = 1 + (1 + 4 - 2*2) + (1 + 1 - 2) = 2
    assert fid.frechet(a, b) == pytest.approx(2.0, abs=0.08)
    assert fid.frechet(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_plumbing_with_random_weights(tmp_path, random_inception_weights):
    real = _write_images(tmp_path / "real", _blobs(6, 0))
    same = _write_images(tmp_path / "same", _blobs(6, 0))
    shifted = _write_images(tmp_path / "shifted", _blobs(6, 0, shift=60))
    settings = {"inception": "required", "inception_weights": None}
    identical = fid.compute(real, same, settings)
    moved = fid.compute(real, shifted, settings)
    assert identical["value"] == pytest.approx(0.0, abs=1e-3)
    assert moved["value"] > identical["value"] + 1e-3
    assert identical["n_real"] == identical["n_fake"] == 6


def test_fid_weights_at_a_configured_path(tmp_path, random_inception_weights, monkeypatch):
    elsewhere = tmp_path / "weights" / "inception.pth"
    elsewhere.parent.mkdir()
    random_inception_weights.rename(elsewhere)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))
    real = _write_images(tmp_path / "real", _blobs(3, 0))
    result = fid.compute(real, real, {"inception": "required", "inception_weights": str(elsewhere)})
    assert result["value"] == pytest.approx(0.0, abs=1e-3)


def test_missing_weights_required_fails_naming_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nothing"))
    with pytest.raises(fid.WeightsMissing, match=str(tmp_path / "nothing") + ".*" + fid.WEIGHTS_FILE):
        fid.compute(["a.png"], ["b.png"], {"inception": "required", "inception_weights": None})


def test_missing_weights_auto_records_skipped_with_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nothing"))
    result = fid.compute(["a.png"], ["b.png", "c.png"], {"inception": "auto", "inception_weights": None})
    assert "value" not in result and fid.WEIGHTS_FILE in result["skipped"]
    assert result["n_real"] == 1 and result["n_fake"] == 2


def test_frd_runs_offline_and_orders_sets(tmp_path):
    real = _write_images(tmp_path / "real", _blobs(12, 0))
    near = _write_images(tmp_path / "near", _blobs(12, 1))
    far = _write_images(tmp_path / "far", _blobs(12, 1, shift=90))
    near_value = frd.compute(real, near, {})["value"]
    far_value = frd.compute(real, far, {})["value"]
    assert math.isfinite(near_value) and far_value > near_value


def test_evaluate_and_summary_table(prepared):
    for name in prepared["experiments"]:
        train.train(prepared, name)
        sample.sample(prepared, name)
        result = evaluate.evaluate(prepared, name)
        assert "skipped" in result["fid"] and math.isfinite(result["frd"]["value"])
    table = evaluate.summarize(prepared)
    assert list(table["experiment"]) == list(prepared["experiments"])
    assert (table["frd_n_fake"] == 12).all() and (table["frd_n_real"] > 0).all()
    markdown = paths.path(paths.SUMMARY_MD).read_text()
    assert "skipped: FID Inception weights not found" in markdown
    on_disk = json.loads(paths.path(paths.METRICS, experiment="tiny_dcgan_tumour").read_text())
    assert on_disk["frd"]["n_fake"] == 12
