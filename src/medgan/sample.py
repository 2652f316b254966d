"""sample: N images per experiment as PNGs, plus a grid PNG to look at."""

from __future__ import annotations

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


def sample(params: dict, name: str) -> None:
    settings = params["sample"]
    G, _ = load_generator(paths.path(paths.MODEL, experiment=name))
    images = generate(G, settings["n"], params["seed"])
    with atomic_dir(paths.path(paths.SAMPLES, experiment=name)) as tmp:
        for i, image in enumerate(images):
            Image.fromarray(image[0].numpy()).save(tmp / f"{i:05d}.png", compress_level=1)
    save_grid(images, paths.path(paths.GRID, experiment=name), settings["grid_columns"])
