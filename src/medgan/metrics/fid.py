"""FID through pytorch-fid's InceptionV3 (2048-d pool features).

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

    with _hub_dir_holding(weights):
        return InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()


def features(model, paths: list[str], batch_size: int = 50) -> np.ndarray:
    import torch
    from PIL import Image

    out = []
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            batch = np.stack([np.asarray(Image.open(p).convert("L"), np.float32) / 255.0
                              for p in paths[start:start + batch_size]])
            x = torch.from_numpy(batch)[:, None].repeat(1, 3, 1, 1)  # grayscale -> 3 channels
            out.append(model(x)[0].flatten(1).numpy())
    return np.concatenate(out).astype(np.float64)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    from pytorch_fid.fid_score import calculate_frechet_distance

    return float(calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False),
                                            b.mean(0), np.cov(b, rowvar=False)))


def compute(real: list[str], fake: list[str], settings: dict) -> dict:
    counts = {"n_real": len(real), "n_fake": len(fake)}
    try:
        weights = require_weights(settings["inception_weights"])
    except WeightsMissing as err:
        if settings["inception"] == "required":
            raise
        return {"skipped": str(err).split(". On")[0], **counts}
    model = inception_model(weights)
    return {"value": frechet(features(model, real), features(model, fake)), **counts}
