"""sample: N images per experiment as PNGs, plus a grid PNG to look at."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from PIL import Image
from torchvision.utils import make_grid

from . import paths
from .atomic import atomic_dir, atomic_file
from .train import load_generator, to_uint8


@torch.no_grad()
def generate(G, n: int, seed: int, batch_size: int = 64) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), G.z_dim, generator=rng)
        chunks.append(to_uint8(G(z)))
    return torch.cat(chunks)


def save_grid(images_uint8: torch.Tensor, out, columns: int) -> None:
    grid = make_grid(images_uint8, nrow=columns, padding=2, pad_value=255)[0]
    with atomic_file(out) as tmp:
        Image.fromarray(grid.numpy()).save(tmp, format="PNG")


def write_images(folder: Path, images_uint8: torch.Tensor, cls: str) -> list[dict]:
    """Save (N, 1, H, W) uint8 images as <folder>/<cls>/NNNNN.png; return their index rows."""
    (folder / cls).mkdir(parents=True, exist_ok=True)
    rows = []
    for i, image in enumerate(images_uint8):
        rel = f"{cls}/{i:05d}.png"
        Image.fromarray(image[0].numpy()).save(folder / rel, compress_level=1)
        rows.append({"path": rel, "class": cls, "kind": "fake"})
    return rows


def sample(params: dict, name: str) -> None:
    """Samples contract (read by evaluate): results/samples/<experiment>/<class>/NNNNN.png
    plus samples.csv with one row per file: path (relative), class, kind."""
    settings = params["sample"]
    exp = params["experiments"][name]
    G, _ = load_generator(paths.path(paths.MODEL, experiment=name))
    images = generate(G, settings["n"], params["seed"])
    with atomic_dir(paths.path(paths.SAMPLES, experiment=name)) as tmp:
        rows = write_images(tmp, images, exp["class"])
        pd.DataFrame(rows).to_csv(tmp / "samples.csv", index=False)
    save_grid(images, paths.path(paths.GRID, experiment=name), settings["grid_columns"])
