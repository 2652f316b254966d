"""The same seeds give the same weights and metric files: the demo's variants (MLP GAN, DCGAN,
DCGAN + DiffAugment + EMA + spectral norm, pix2pix) and a DDPM, trained a few steps with tiny
settings, sampled and evaluated (and the report's training curves and a Turing page drawn from
them), hash to the references in bit_identity.json, recorded on the code before the structure
change of issue 26 (12ca402).

Floating point differs between CPU models (vector instructions, bf16 support) and library
versions, so a reference holds only for the machine fingerprint it was recorded on (CPU model
and ids, versions of the packages that make the numbers). On a machine whose fingerprint has no
reference the test runs the pipeline twice and checks that the two runs agree (determinism), and
says that it could not compare with the reference. A change meant to change the numbers records
new references: `MEDGAN_RECORD_BIT_IDENTITY=1 pytest tests/test_bit_identity.py` (say so in the
commit message).

Training runs in this one process while the pipeline runs each stage in its own: the process-wide
settings a stage could leave behind (denormal flushing, threads) are reset before sampling and
evaluating, as a fresh process has them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import pytest
import torch
import yaml

import pandas as pd

from medgan import config, evaluate, paths, phantoms, prepare, provenance, report, sample, train, turing
from conftest import tiny_params

REFERENCES = Path(__file__).with_name("bit_identity.json")
RECORD = os.environ.get("MEDGAN_RECORD_BIT_IDENTITY") == "1"

VARIANTS = {"vanilla": {"z_dim": 8, "hidden_g": [16, 16], "hidden_d": [16]},
            "dcgan": {"z_dim": 8, "ngf": 4, "ndf": 4},
            "pix2pix": {"ngf": 4, "ndf": 4, "l1_lambda": 100.0},
            "ddpm": {"channels": [8, 16], "attention": [False, True], "head_channels": 8, "norm_groups": 4,
                     "timesteps": 20, "progress_ddim_steps": 2, "ema": 0.9}}
EXPERIMENTS = {  # as params.yaml's demo experiments, on tiny networks
    "bit_vanilla": {"dataset": "tiny", "variant": "vanilla", "class": "tumour", "train": {"diffaugment": []}},
    "bit_dcgan": {"dataset": "tiny", "variant": "dcgan", "class": "tumour", "train": {"diffaugment": []}},
    "bit_dcgan_small_data": {"dataset": "tiny", "variant": "dcgan", "class": "tumour",
                             "hp": {"ema": 0.99, "spectral_norm": True}},
    "bit_pix2pix": {"dataset": "tiny", "variant": "pix2pix", "class": "all", "train": {"batch_size": 4}},
    "bit_ddpm": {"dataset": "tiny", "variant": "ddpm", "class": "tumour", "image_size": [16, 16]},
}
# pixel metrics only: Inception weights and radiomics (memorisation's fallback) take seconds to minutes
METRICS = {"pix2pix": ["paired"]}
UNPAIRED_METRICS = ["diversity"]
FINGERPRINT_PACKAGES = ("torch", "numpy", "scipy", "scikit-image", "pillow", "monai", "matplotlib")
TURING_EXPERIMENT = "bit_dcgan"
FRESH_PROCESS_THREADS = 2


def machine_fingerprint() -> str:
    cpu = provenance.cpu_info()
    versions = provenance.package_versions(FINGERPRINT_PACKAGES)
    return " | ".join([cpu["cpu"], cpu["cpu_id"], f"bf16 {cpu['cpu_bf16']}"]
                      + [f"{name} {version}" for name, version in versions.items()])


def canonical_hash(value) -> str:
    """sha256 of a loaded model or checkpoint: tensors by dtype, shape and bytes; containers in
    order (dicts by sorted key); anything else by its repr."""
    digest = hashlib.sha256()

    def feed(item):
        if isinstance(item, torch.Tensor):
            tensor = item.detach().cpu().contiguous()
            digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(item, dict):
            digest.update(b"{")
            for key in sorted(item, key=str):
                digest.update(repr(key).encode())
                feed(item[key])
            digest.update(b"}")
        elif isinstance(item, (list, tuple)):
            digest.update(b"[")
            for element in item:
                feed(element)
            digest.update(b"]")
        else:
            digest.update(repr(item).encode())

    feed(value)
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fresh_process_state() -> None:
    """As a new `medgan` process starts on a 2-core machine: the training data and networks are
    built before the run's own thread count (resources.train.threads: 1) applies."""
    torch.set_flush_denormal(False)
    torch.set_num_threads(FRESH_PROCESS_THREADS)


def with_metrics_of(params: dict, name: str) -> dict:
    """params with the evaluate metrics that fit the experiment's variant."""
    metrics = METRICS.get(EXPERIMENTS[name]["variant"], UNPAIRED_METRICS)
    return {**params, "evaluate": {**params["evaluate"], "metrics": metrics}}


def run_pipeline(params: dict) -> dict[str, str]:
    """Train, sample and evaluate every experiment; the hash of each file (or loaded state) that
    must not change, by a name that says which."""
    hashes = {}
    for name in EXPERIMENTS:
        fresh_process_state()
        train.train(params, name)
        model = torch.load(paths.path(paths.MODEL, experiment=name), weights_only=True)
        hashes[f"{name}/model (without provenance)"] = canonical_hash({k: v for k, v in model.items()
                                                                       if k != "provenance"})
        checkpoint = paths.path(paths.CHECKPOINTS, experiment=name) / "last.pt"
        hashes[f"{name}/checkpoint"] = canonical_hash(torch.load(checkpoint, weights_only=True))
        hashes[f"{name}/train log"] = file_hash(paths.path(paths.TRAIN_LOG, experiment=name))
        hashes[f"{name}/progress grid"] = file_hash(paths.path(paths.PROGRESS, experiment=name))
        curves = report.training_curves(pd.read_csv(paths.path(paths.TRAIN_LOG, experiment=name)))
        hashes[f"{name}/report training curves"] = hashlib.sha256(curves.encode()).hexdigest()
        fresh_process_state()
        sample.sample(params, name)
        folder = paths.path(paths.SAMPLES, experiment=name)
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name != provenance.SAMPLES_FILE:  # that one names the commit
                hashes[f"{name}/samples/{path.relative_to(folder).as_posix()}"] = file_hash(path)
        hashes[f"{name}/grid"] = file_hash(paths.path(paths.GRID, experiment=name))
        hashes[f"{name}/interpolations"] = file_hash(paths.path(paths.INTERPOLATION, experiment=name))
        fresh_process_state()
        evaluate.evaluate(with_metrics_of(params, name), name)
        hashes[f"{name}/metrics"] = file_hash(paths.path(paths.REPLICATE_METRICS, experiment=name))
        hashes[f"{name}/closest pairs"] = file_hash(paths.path(paths.CLOSEST_PAIRS, experiment=name))
    turing.build(params, TURING_EXPERIMENT)
    for label, template in (("page", paths.TURING_PAGE), ("key", paths.TURING_KEY)):
        hashes[f"{TURING_EXPERIMENT}/turing {label}"] = file_hash(paths.path(template, experiment=TURING_EXPERIMENT))
    return hashes


def bit_params() -> dict:
    raw = tiny_params(variants=VARIANTS, experiments=EXPERIMENTS)
    raw["datasets"]["tiny"].update(write_masks=True)
    raw["train"].update(iterations=4, checkpoint_every=2, log_every=1, progress_every=2)
    raw["sample"] = {"n": 6, "grid_columns": 3, "interpolation_steps": 3, "interpolation_pairs": 1,
                     "ddim_steps": 3}
    raw["evaluate"] = {"metrics": UNPAIRED_METRICS, "inception": "off", "bootstrap": 20}
    return raw


def run_in(root: Path, monkeypatch) -> dict[str, str]:
    """The whole pipeline in a fresh project folder: phantoms, prepare, then run_pipeline."""
    root.mkdir()
    monkeypatch.chdir(root)
    (root / "params.yaml").write_text(yaml.safe_dump(bit_params(), sort_keys=False))
    params = config.load()
    phantoms.generate("lits", paths.path(paths.RAW, name="tiny"), params["phantoms"]["tiny"], params["seed"])
    prepare.prepare_dataset("tiny", params["datasets"]["tiny"], paths.path(paths.SLICES, dataset="tiny"),
                            params["seed"])
    return run_pipeline(params)


def differing(got: dict[str, str], want: dict[str, str]) -> list[str]:
    return sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))


def test_same_seeds_give_the_recorded_weights_samples_and_metric_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(config.PARAMS_ENV, raising=False)
    threads = torch.get_num_threads()
    try:
        hashes = run_in(tmp_path / "first", monkeypatch)
    finally:
        torch.set_num_threads(threads)
    fingerprint = machine_fingerprint()
    references = json.loads(REFERENCES.read_text()) if REFERENCES.is_file() else {}
    if RECORD:
        references[fingerprint] = hashes
        REFERENCES.write_text(json.dumps(references, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"recorded {len(hashes)} references for {fingerprint} in {REFERENCES.name}")
    if fingerprint in references:
        wrong = differing(hashes, references[fingerprint])
        assert not wrong, f"differ from the reference recorded on this machine kind: {wrong}"
        return
    try:
        again = run_in(tmp_path / "second", monkeypatch)
    finally:
        torch.set_num_threads(threads)
    wrong = differing(hashes, again)
    assert not wrong, f"two runs with the same seeds differ: {wrong}"
    warnings.warn(f"bit identity: no reference for this machine ({fingerprint}; recorded: "
                  f"{sorted(references)}); only determinism (two runs equal) was checked")
