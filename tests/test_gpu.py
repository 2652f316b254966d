"""The GPU code path (marker `gpu`; skipped without CUDA, so CI never needs a GPU): every variant
trains on CUDA with bf16 autocast and channels_last and samples; a resumed GPU run equals a
straight one; the FID Inception gives the CPU's features on the GPU; DDP through torchrun with
NCCL. `bash benchmarks/gpu_check.sh OUT` runs these with the benchmarks (benchmarks/README.md).

The data are slices written straight into the slice layout (no SimpleITK: the GPU machine may
not have it) and the networks are small: these tests check the path, not speed."""

from __future__ import annotations

import os

# cuBLAS reads this when it first starts; deterministic algorithms need it (resume test)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import argparse  # noqa: E402
import copy  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from torch import nn  # noqa: E402

from conftest import tiny_params  # noqa: E402
from medgan import cli, config, modelio, paths, sample, train, variants  # noqa: E402
from test_diffusion import TINY_UNET  # noqa: E402
from test_pix2pix_settings import SIZE, _organ_lesion_dataset  # noqa: E402

# MEDGAN_GPU_TESTS_ON=cpu dry-runs these tests' own logic on a CPU (bf16 autocast there, gloo for
# DDP) before a GPU is spent on them; they check the GPU path only on "cuda", the default.
DEVICE = os.environ.get("MEDGAN_GPU_TESTS_ON", "cuda")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA")]

SMALL_HP = {
    "vanilla": {"z_dim": 8, "hidden_g": [16, 16], "hidden_d": [16]},
    "dcgan": {"z_dim": 8, "ngf": 8, "ndf": 8},
    "cgan": {"z_dim": 8, "ngf": 8, "ndf": 8, "embed_dim": 2},
    "wgan_gp": {"z_dim": 8, "ngf": 8, "ndf": 8, "n_critic": 2},
    "seednet": {"network": "tf_tutorial", "z_dim": 16},
    "pix2pix": {"ngf": 8, "ndf": 8},
    "pix2pix_inpaint": {"ngf": 8, "ndf": 8, "region_margin": [2, 3]},
    "ddpm": TINY_UNET, "ddpm_class": TINY_UNET, "ddpm_mask": TINY_UNET,
}
# one class for unconditional unpaired variants; the others learn every class or map label maps
ALL_CLASSES = {"cgan", "ddpm_class", "pix2pix", "pix2pix_inpaint", "ddpm_mask"}
INCEPTION_RTOL = 1e-3


def gpu_params(experiments: dict, **train_settings) -> dict:
    raw = tiny_params(variants={name: dict(hp) for name, hp in SMALL_HP.items()})
    raw["datasets"]["organs"] = {"kind": "volumes", "raw": "unused", "image_size": [SIZE, SIZE],
                                 "classes": ["healthy", "tumour"]}
    raw["experiments"] = experiments
    raw["train"].update({"iterations": 4, "batch_size": 4, "checkpoint_every": 2, "log_every": 1,
                         "progress_every": 2, "device": DEVICE, "precision": "auto" if DEVICE == "cuda" else "bf16",
                         **train_settings})
    raw["sample"] = {"n": 4, "grid_columns": 2, "interpolation_steps": 3, "interpolation_pairs": 1, "ddim_steps": 3}
    return config.validate(raw)


def experiment_of(variant: str) -> dict:
    return {"dataset": "organs", "variant": variant, "class": "all" if variant in ALL_CLASSES else "tumour"}


@pytest.fixture
def organs(project):
    _organ_lesion_dataset(paths.path(paths.SLICES, dataset="organs"))
    return project


def first_layer(net: nn.Module) -> nn.Module:
    return next(m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)))


@pytest.mark.parametrize("variant", list(variants.VARIANTS))
def test_every_variant_trains_on_cuda_with_bf16_and_channels_last_and_samples(organs, variant):
    name = f"gpu_{variant}"
    params = gpu_params({name: experiment_of(variant)})
    trainer = train.Trainer(params, name)
    assert trainer.device.type == DEVICE
    for net in trainer.family.networks.values():
        for p in net.parameters():
            assert p.device.type == DEVICE
            if p.dim() == 4:
                assert p.is_contiguous(memory_format=torch.channels_last), f"{variant}: a conv weight is not channels_last"
    seen = []
    first_layer(trainer.G).register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    trainer.run()
    assert torch.bfloat16 in seen, f"{variant}: G's first layer never ran under bf16 autocast ({set(seen)})"
    log = pd.read_csv(paths.path(paths.TRAIN_LOG, experiment=name))
    losses = [c for c in ("loss_d", "loss_g", "loss") if c in log]
    assert len(log) == 4 and np.isfinite(log[losses].to_numpy()).all()
    model = torch.load(paths.path(paths.MODEL, experiment=name), weights_only=True)
    assert model["effective"]["device"] == DEVICE and model["effective"]["precision"] == "bf16"
    assert all(not t.is_cuda for t in model["G"].values())  # a GPU-trained model loads on a CPU
    sample.sample(params, name)
    index = pd.read_csv(paths.path(paths.SAMPLES, experiment=name) / "samples.csv")
    assert (index["kind"] == "fake").sum() > 0
    assert paths.path(paths.GRID, experiment=name).exists()


def _weights(name: str) -> dict:
    return torch.load(paths.path(paths.MODEL, experiment=name), weights_only=True)["G"]


@pytest.mark.parametrize("variant", ["dcgan", "pix2pix"])  # DiffAugment and dropout draw on the GPU's RNG
def test_a_resumed_gpu_run_equals_a_straight_one(organs, variant):
    """With deterministic kernels (cuDNN picks nondeterministic ones by default), killed after 4
    of 6 steps and resumed gives bit for bit the straight run: the checkpoint carries the GPU's
    RNG state too."""
    name = f"resume_{variant}"
    params = gpu_params({name: experiment_of(variant)}, iterations=6, checkpoint_every=2,
                        diffaugment=["translation", "cutout"])
    torch.use_deterministic_algorithms(True)
    try:
        train.train(params, name)
        straight = _weights(name)
        modelio.remove_checkpoints(paths.path(paths.CHECKPOINTS, experiment=name))
        paths.path(paths.MODEL, experiment=name).unlink()
        train.Trainer(params, name).run(stop_after=4)
        train.Trainer(params, name).run()
        resumed = _weights(name)
    finally:
        torch.use_deterministic_algorithms(False)
    differing = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert not differing, f"{len(differing)} of {len(straight)} tensors differ after resuming, e.g. {differing[:3]}"


def _calibrated_random_inception() -> nn.Module:
    """pytorch-fid's InceptionV3 with seeded random weights whose batch-norm statistics are
    measured on random images: a stand-in where the FID weights (87 MB) are not on the machine.
    The GPU-vs-CPU comparison is about kernels, not about what the weights learnt."""
    import pytorch_fid.inception as fid
    from torchvision.models.inception import Inception3

    torch.manual_seed(0)
    # pytorch-fid's architecture without its download: no state dict is fetched or loaded
    with mock.patch.object(fid, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(Inception3, "load_state_dict", lambda self, state: None):
        net = fid.InceptionV3([fid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(8, 3, 64, 64))
    return net.eval()


def _inception_network() -> tuple[nn.Module, str]:
    from medgan.metrics import inception

    try:
        weights = inception.resolve("auto", None)
        return inception.model(weights), weights.origin
    except inception.WeightsMissing:
        return _calibrated_random_inception(), "seeded random weights, batch norm calibrated (no FID weights here)"


def _feature_model(net: nn.Module, device: str):
    """What medgan.metrics.features.inception_features takes: the module itself, or (issue 22's
    interface) a PoolFeatures callable that knows its device."""
    from medgan.metrics import inception

    net = copy.deepcopy(net).to(device)
    if hasattr(inception, "PoolFeatures"):
        return inception.PoolFeatures(lambda x: net(x)[0].flatten(1), torch.device(device), "test")
    return net


def test_inception_features_on_the_gpu_equal_the_cpus(project, tmp_path, capsys):
    from PIL import Image

    from medgan.metrics import features

    rng = np.random.default_rng(0)
    files = []
    for i in range(16):
        image = np.clip(rng.normal(100, 40, (64, 64)), 0, 255).astype(np.uint8)
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(files[-1])
    net, origin = _inception_network()
    cpu = features.inception_features(_feature_model(net, "cpu"), files, (64, 64))
    on_device = _feature_model(net, DEVICE)
    gpu = features.inception_features(on_device, files, (64, 64))
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        gpu_fp32 = features.inception_features(on_device, files, (64, 64))
    scale = np.abs(cpu).max()
    relative = {"as shipped": np.abs(gpu - cpu).max() / scale, "TF32 off": np.abs(gpu_fp32 - cpu).max() / scale}
    with capsys.disabled():
        print(f"\nInception GPU vs CPU ({origin}): max |difference| / max |feature| "
              + ", ".join(f"{k} {v:.2e}" for k, v in relative.items())
              + f"; torch.backends.cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}")
    assert relative["as shipped"] <= INCEPTION_RTOL, relative


def test_ddp_under_torchrun_with_nccl_trains_and_writes(organs, monkeypatch, capfd):
    """`medgan train` relaunched by the CLI's own launcher under torchrun (what it does for
    resources.train.gpus > 1), with one process: the process group is NCCL and the model says so."""
    name = "ddp_dcgan"
    params = gpu_params({name: experiment_of("dcgan")})
    (organs / "gpu_params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    source = str(Path(cli.__file__).parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])))
    cli.launch_torchrun(1, argparse.Namespace(target=name, params="gpu_params.yaml", replicate=0))
    assert "--nproc_per_node=1" in capfd.readouterr().err
    model = torch.load(paths.path(paths.MODEL, experiment=name), weights_only=True)
    assert model["effective"] == {"device": DEVICE, "world_size": 1, "distributed": "nccl" if DEVICE == "cuda" else "gloo",
                                  "precision": "bf16"}
