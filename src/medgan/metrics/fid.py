"""FID through pytorch-fid's InceptionV3 (2048-d pool features), with a bootstrap CI.

The weights cannot be downloaded at run time here. They are looked up in the configured path
or the torch hub cache; `inception: required` fails naming the expected file, `auto` records
`skipped` with the reason, `off` is never called.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import MedganError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"


class WeightsMissing(MedganError, FileNotFoundError):
    pass


def weights_path(configured: str | None) -> Path:
    if configured:
        return Path(configured)
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def require_weights(configured: str | None) -> Path:
    path = weights_path(configured)
    if not path.is_file():
        raise WeightsMissing(
            f"FID Inception weights not found at {path}. On a connected machine fetch "
            f"{WEIGHTS_URL} and copy it there (or set evaluate.inception_weights), or set "
            f"evaluate.inception to 'auto' (skip with a reason) or 'off'.")
    return path


@contextlib.contextmanager
def _hub_dir_holding(weights: Path):
    """pytorch-fid only loads from <torch hub>/checkpoints/<file>; for weights kept elsewhere,
    point TORCH_HOME at a temporary hub holding a link to them while the model loads."""
    import torch

    if weights.resolve() == weights_path(None).resolve():
        yield
        return
    previous = os.environ.get("TORCH_HOME")
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "hub" / "checkpoints").mkdir(parents=True)
        os.symlink(weights.resolve(), Path(home) / "hub" / "checkpoints" / WEIGHTS_FILE)
        os.environ["TORCH_HOME"] = home
        try:
            assert Path(torch.hub.get_dir()) == Path(home) / "hub"
            yield
        finally:
            if previous is None:
                os.environ.pop("TORCH_HOME", None)
            else:
                os.environ["TORCH_HOME"] = previous


def inception_model(weights: Path):
    from pytorch_fid.inception import InceptionV3

    from ..modelio import safe_load

    # pytorch-fid loads through torch.hub, which unpickles anything: vet the file first, so that a
    # planted pickle in the hub cache or at inception_weights is refused instead of run.
    safe_load(weights)
    with _hub_dir_holding(weights):
        return InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows a and b (pytorch-fid's)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    return float(calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False),
                                            b.mean(0), np.cov(b, rowvar=False)))


def frechet_fast(a: np.ndarray, b: np.ndarray) -> float:
    """The same distance computed exactly in the sample space, for bootstrap replicates
    (written by hand: no library has it). With A = centred(a)/sqrt(n-1), B likewise,
    tr sqrt(Sa Sb) = sum of singular values of A B^T (n x m instead of d x d)."""
    A = (a - a.mean(0)) / np.sqrt(len(a) - 1)
    B = (b - b.mean(0)) / np.sqrt(len(b) - 1)
    trace_sqrt = np.linalg.svd(A @ B.T, compute_uv=False).sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + (A * A).sum() + (B * B).sum() - 2 * trace_sqrt)


NAMES = ["fid"]


def compute(inp) -> dict:
    from .common import bootstrap_ci, inception_features, number

    real, fake = inception_features(inp, "FID")
    ci = bootstrap_ci(lambda i, j: frechet_fast(real[i], fake[j]), (len(real), len(fake)), inp, "fid")
    return {"fid": number(frechet(real, fake), inp, ci, len(real), len(fake),
                          features="inception-2048")}
